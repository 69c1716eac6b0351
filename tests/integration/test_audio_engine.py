"""CLAP through Infinity, in-process: the same vectors as transformers' ClapModel, long and
overlong queries, wrong input, and fused checkpoints refused."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from support.paths import ROOT

from msearch.config import EmbeddingSettings
from msearch.embedding.infinity import InfinityEngine
from msearch.errors import AudioRejected, ModelUnavailable
from msearch.media.audio import wav_bytes

RATE = 48_000


@pytest.fixture(scope="module")
async def clap(tiny_clap_dir: Path) -> AsyncIterator[InfinityEngine]:
    engine = InfinityEngine(EmbeddingSettings(model=str(tiny_clap_dir), device="cpu", timeout_s=60))
    await engine.start()
    yield engine
    await engine.stop()


def _cos(a: list[float] | np.ndarray, b: list[float] | np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def _reference(model_dir: Path) -> tuple[object, object]:
    from transformers import ClapModel, ClapProcessor

    return ClapModel.from_pretrained(str(model_dir)).eval(), ClapProcessor.from_pretrained(
        str(model_dir)
    )


def _sweep(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t)).astype(np.float32)


async def test_text_and_sound_equal_transformers(clap: InfinityEngine, tiny_clap_dir: Path) -> None:
    import torch

    model, processor = _reference(tiny_clap_dir)
    assert clap.sampling_rate == RATE and clap.dim == 32
    # well past CLAP's default cut at 20 tokens
    query = " ".join(["a dog barking in the distance while static noise and a hiss"] * 6)
    [vector] = await clap.embed_texts([query])
    with torch.no_grad():
        tokens = processor.tokenizer([query], return_tensors="pt")  # type: ignore[attr-defined]
        assert tokens["input_ids"].shape[1] > 60
        expected = model.get_text_features(**tokens)[0].numpy()  # type: ignore[attr-defined]
    assert _cos(vector, expected) >= 0.999

    clip = _sweep(10.0)
    [heard] = await clap.embed_audio([wav_bytes(clip, RATE)])
    with torch.no_grad():
        features = processor.feature_extractor(  # type: ignore[attr-defined]
            clip, sampling_rate=RATE, return_tensors="pt"
        )
        expected = model.get_audio_features(**features)[0].numpy()  # type: ignore[attr-defined]
    assert _cos(heard, expected) >= 0.999


async def test_overlong_query_answers(clap: InfinityEngine) -> None:
    """600 tokens are cut to the 512 RoBERTa holds; cut at 514 the worker would wedge."""
    [vector] = await clap.embed_texts(["tick " * 600])
    assert len(vector) == clap.dim


async def test_wrong_rate_and_stereo_are_refused_and_the_engine_answers(
    clap: InfinityEngine,
) -> None:
    with pytest.raises(AudioRejected):
        await clap.embed_audio([wav_bytes(_sweep(2.0), 44_100)])
    stereo = np.stack([_sweep(2.0), _sweep(2.0)], axis=1)
    with pytest.raises(AudioRejected, match="mono"):  # it would wedge the worker
        await clap.embed_audio([wav_bytes(stereo, RATE)])
    with pytest.raises(AudioRejected):
        await clap.embed_audio([b"not a wav at all"])
    [vector] = await clap.embed_audio([wav_bytes(_sweep(1.0), RATE)])
    assert len(vector) == clap.dim


async def test_a_fused_clap_is_refused_at_load(tmp_path: Path) -> None:
    fused = tmp_path / "fused-clap"
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(ROOT / "scripts" / "make_tiny_clap.py"), str(fused), "--fused"],
        check=True,
        capture_output=True,
    )
    engine = InfinityEngine(EmbeddingSettings(model=str(fused), device="cpu", timeout_s=30))
    with pytest.raises(ModelUnavailable, match="fused CLAP"):
        await engine.start()
