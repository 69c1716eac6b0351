"""Shared fixtures: models built once per session (cached under build/), real engines,
real stores in tmp_path, media generated on the fly."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.paths import BUILD, ROOT, script_digest

# Tests never reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("INFINITY_HOME", str(ROOT / "build" / "infinity"))

from msearch.config import Settings, load_settings
from msearch.embedding.infinity import InfinityEngine


@pytest.fixture(scope="session")
def tiny_clip_dir() -> Path:
    """The tiny random CLIP, rebuilt only when its script changes."""
    out = BUILD / f"tiny-clip-{script_digest('make_tiny_clip.py', 'clip_builder.py')}"
    if not (out / "model.safetensors").is_file():
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "make_tiny_clip.py"), str(out)],
            check=True,
            capture_output=True,
        )
    return out


@pytest.fixture(scope="session")
def tiny_clap_dir() -> Path:
    """The tiny random CLAP, rebuilt only when its script changes."""
    out = BUILD / f"tiny-clap-{script_digest('make_tiny_clap.py')}"
    if not (out / "model.safetensors").is_file():
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "make_tiny_clap.py"), str(out)],
            check=True,
            capture_output=True,
        )
    return out


@pytest.fixture(scope="session")
def tiny_chinese_clip_dir() -> Path:
    """The tiny random Chinese-CLIP, rebuilt only when its script changes."""
    out = BUILD / f"tiny-chinese-clip-{script_digest('make_tiny_chinese_clip.py')}"
    if not (out / "model.safetensors").is_file():
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "make_tiny_chinese_clip.py"), str(out)],
            check=True,
            capture_output=True,
        )
    return out


@pytest.fixture(scope="session")
def tiny_whisper_dir() -> Path:
    """The tiny random Whisper: ``hf/`` for transformers, ``ct2/`` for faster-whisper;
    rebuilt only when its script changes."""
    out = BUILD / f"tiny-whisper-{script_digest('make_tiny_whisper.py')}"
    if not (out / "ct2" / "model.bin").is_file():
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "make_tiny_whisper.py"), str(out)],
            check=True,
            capture_output=True,
        )
    return out


@pytest.fixture(scope="session")
async def tiny_engine(tiny_clip_dir: Path) -> AsyncIterator[InfinityEngine]:
    """One real Infinity engine on the tiny model, shared by the whole session."""
    from msearch.config import EmbeddingSettings

    engine = InfinityEngine(EmbeddingSettings(model=str(tiny_clip_dir), device="cpu", timeout_s=60))
    await engine.start()
    yield engine
    await engine.stop()


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    path = tmp_path / "media"
    path.mkdir()
    return path.resolve()


@pytest.fixture
def make_settings(tmp_path: Path, tiny_clip_dir: Path, media_dir: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "embedding": {"model": str(tiny_clip_dir), "device": "cpu", "timeout_s": 60},
            "api": {"allowed_roots": [media_dir]},
            "performance": {"max_concurrent_files": 4},
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                base[key] = {**base[key], **value}
            else:
                base[key] = value
        return load_settings(ROOT / "config" / "msearch.yaml", **base)

    return make


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def chdir_tmp(tmp_path: Path) -> Iterator[Path]:
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)
