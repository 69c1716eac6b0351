"""Shared fixtures: models built once per session (cached under build/), real engines,
real stores in tmp_path, media generated on the fly."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "test-models"

# Tests never reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("INFINITY_HOME", str(ROOT / "build" / "infinity"))

from msearch.config import Settings, load_settings  # noqa: E402
from msearch.embedding.infinity import InfinityEngine  # noqa: E402


def _script_digest(*names: str) -> str:
    digest = hashlib.sha1()
    for name in names:
        digest.update((ROOT / "scripts" / name).read_bytes())
    return digest.hexdigest()[:10]


@pytest.fixture(scope="session")
def tiny_clip_dir() -> Path:
    """The tiny random CLIP, rebuilt only when its script changes."""
    out = BUILD / f"tiny-clip-{_script_digest('make_tiny_clip.py', 'clip_builder.py')}"
    if not (out / "model.safetensors").is_file():
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "make_tiny_clip.py"), str(out)],
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


class CountingEngine:
    """The real engine, observed: counts image embeddings and concurrent calls."""

    def __init__(self, engine: InfinityEngine) -> None:
        self._engine = engine
        self.images_embedded = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    async def embed_images(self, images: list[Image.Image]) -> list[list[float]]:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._engine.embed_images(images)
        finally:
            self.in_flight -= 1
            self.images_embedded += len(images)


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


@asynccontextmanager
async def api_client(settings: Settings, engine: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Real HTTP through the ASGI app, with its lifespan (services) running."""
    from msearch.api import create_app

    app = create_app(settings, engine=engine)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


async def wait_for(
    predicate: Callable[[], Any], limit_s: float = 60.0, interval: float = 0.05
) -> Any:
    """Poll an (async) predicate until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + limit_s
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


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
