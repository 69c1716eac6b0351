"""The demo model's training script, and the model that ships."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from msearch.config import EmbeddingSettings
from msearch.embedding.infinity import InfinityEngine
from msearch.embedding.models import DEMO_MODEL_DIR, resolve_model

ROOT = Path(__file__).resolve().parents[2]


def _train(out: Path, *, seed: int, steps: int, batch: int, samples: int) -> dict[str, Any]:
    """The training command as a user runs it (a fresh process); its report."""
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "train_demo_model.py"),
            str(out),
            *("--seed", str(seed), "--steps", str(steps)),
            *("--batch", str(batch), "--samples", str(samples)),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    report: dict[str, Any] = json.loads((out / "training.json").read_text())
    return report


@pytest.mark.slow
async def test_short_training_lowers_the_loss_and_infinity_loads_it(tmp_path: Path) -> None:
    out = tmp_path / "model"
    report = _train(out, seed=3, steps=60, batch=64, samples=1200)
    assert float(report["loss_end"]) < float(report["loss_start"]) - 0.2
    assert report["seed"] == 3
    engine = InfinityEngine(EmbeddingSettings(model=str(out), device="cpu"))
    await engine.start()
    try:
        [vector] = await engine.embed_texts(["a small red star in the top left corner"])
        assert engine.dim == 128 and len(vector) == 128 and engine.input_size == 64
    finally:
        await engine.stop()


def test_training_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    """The command, run twice, writes the same weights (each run a fresh process, as the
    recipe in training.json is meant to be replayed)."""
    outputs = []
    for name in ("a", "b"):
        _train(tmp_path / name, seed=5, steps=4, batch=16, samples=64)
        outputs.append(tmp_path / name)
    reports = [json.loads((o / "training.json").read_text()) for o in outputs]
    assert reports[0]["losses"] == reports[1]["losses"]
    weights = [(o / "model.safetensors").read_bytes() for o in outputs]
    assert weights[0] == weights[1]


def test_the_demo_model_ships_with_its_recipe() -> None:
    assert resolve_model("demo") == str(DEMO_MODEL_DIR)
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "preprocessor_config.json",
        "training.json",
    ):
        assert (DEMO_MODEL_DIR / name).is_file(), name
    recipe = json.loads((DEMO_MODEL_DIR / "training.json").read_text())
    assert recipe["command"].startswith("python scripts/train_demo_model.py")
    assert recipe["loss_end"] < recipe["loss_start"]
    size_mb = sum(p.stat().st_size for p in DEMO_MODEL_DIR.iterdir()) / 1e6
    assert size_mb < 20
