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


def _built(name: str, script: str, *inputs: str, made: str = "model.safetensors") -> Path:
    """What ``scripts/<script>`` writes, built once and again only when the script (or
    one of the ``inputs`` it imports) changes; ``made``: the file a finished build has."""
    out = BUILD / f"{name}-{script_digest(script, *inputs)}"
    if not (out / made).is_file():
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / script), str(out)],
            check=True,
            capture_output=True,
        )
    return out


@pytest.fixture(scope="session")
def tiny_clip_dir() -> Path:
    return _built("tiny-clip", "make_tiny_clip.py", "clip_builder.py")


@pytest.fixture(scope="session")
def tiny_clap_dir() -> Path:
    return _built("tiny-clap", "make_tiny_clap.py")


@pytest.fixture(scope="session")
def tiny_chinese_clip_dir() -> Path:
    return _built("tiny-chinese-clip", "make_tiny_chinese_clip.py")


@pytest.fixture(scope="session")
def tiny_siglip_dir() -> Path:
    return _built("tiny-siglip", "make_tiny_siglip.py")


@pytest.fixture(scope="session")
def tiny_colqwen2_dir() -> Path:
    return _built("tiny-colqwen2", "make_tiny_colqwen2.py")


@pytest.fixture(scope="session")
def tiny_colpali_dir() -> Path:
    return _built("tiny-colpali", "make_tiny_colpali.py")


@pytest.fixture(scope="session")
def tiny_colidefics2_dir() -> Path:
    return _built("tiny-colidefics2", "make_tiny_colidefics2.py", "make_tiny_colpali.py")


@pytest.fixture(scope="session")
def tiny_whisper_dir() -> Path:
    """``hf/`` for transformers, ``ct2/`` for faster-whisper."""
    return _built("tiny-whisper", "make_tiny_whisper.py", made="ct2/model.bin")


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
