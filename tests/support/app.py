"""The app in-process (real HTTP through ASGI, lifespan running), polling, and an
observed engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from PIL import Image

from msearch.config import Settings
from msearch.embedding.infinity import InfinityEngine


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


@asynccontextmanager
async def api_client(
    settings: Settings, engine: Any, **app_options: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """Real HTTP through the ASGI app, with its lifespan (services) running."""
    from msearch.api import create_app

    app = create_app(settings, engine=engine, **app_options)
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


async def index_through_api(
    client: httpx.AsyncClient, paths: list[Any], limit_s: float = 240
) -> dict[str, dict[str, Any]]:
    """Process ``paths`` as one batch job, wait for it, and return each file's record by
    its name."""
    job = (
        await client.post("/api/v1/files/batch-process", json={"paths": [str(p) for p in paths]})
    ).json()

    async def finished() -> bool:
        return bool((await client.get(job["status_url"])).json()["status"] == "finished")

    await wait_for(finished, limit_s=limit_s)
    files = {}
    for summary in job["files"]:
        record = (await client.get(f"/api/v1/files/{summary['file_id']}")).json()
        files[str(record["path"]).rsplit("/", 1)[-1]] = record
    return files
