"""The demo CLAP's training script, and the model that ships: it finds held-out sounds by
their words through the whole product."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.paths import ROOT

from msearch.config import EmbeddingSettings
from msearch.embedding.infinity import InfinityEngine
from msearch.embedding.models import DEMO_SOUND_MODEL_DIR


def _run(script: str, *args: str, timeout: float = 900) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.stdout


@pytest.mark.slow
async def test_short_training_lowers_the_loss_and_infinity_loads_it(tmp_path: Path) -> None:
    out = tmp_path / "clap"
    _run(
        "train_demo_clap.py",
        str(out),
        "--seed",
        "3",
        "--steps",
        "40",
        "--batch",
        "16",
        "--samples",
        "64",
    )
    report: dict[str, Any] = json.loads((out / "training.json").read_text())
    assert float(report["loss_end"]) < float(report["loss_start"]) and report["seed"] == 3
    engine = InfinityEngine(EmbeddingSettings(model=str(out), device="cpu"))
    await engine.start()
    try:
        [vector] = await engine.embed_texts(["a siren"])
        assert engine.sampling_rate == 48_000 and len(vector) == engine.dim == 64
    finally:
        await engine.stop()


@pytest.mark.slow
def test_the_shipped_demo_clap_finds_held_out_sounds_by_their_words() -> None:
    """Through the HTTP API, on sounds of another seed with a variation training never
    heard: text -> audio Recall@1 of at least 0.8 (docs/benchmarks.md has the full run)."""
    assert (DEMO_SOUND_MODEL_DIR / "model.safetensors").is_file()
    last = _run("eval_sound_retrieval.py", "--per-class", "4").strip().splitlines()[-1]
    result = json.loads(last)
    assert result["sounds"] == 32 and result["queries"] == 24
    assert result["recall_at_1"] >= 0.8, result
