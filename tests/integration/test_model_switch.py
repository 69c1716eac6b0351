"""Changing the model: the new one re-indexes into a collection of its own while search
keeps answering from the old one, then msearch switches in one step; a switch cut short
resumes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from support.app import wait_for
from support.audio_factory import tone
from support.media_factory import noise

from msearch.config import EmbeddingSettings, Settings
from msearch.embedding.infinity import InfinityEngine
from msearch.embedding.registry import EngineKind
from msearch.search import SearchOptions
from msearch.services import build_services


class GatedEngine:
    """The real engine, except that indexing waits for ``gate`` (queries do not): the
    switch stays under way for as long as the test needs to look at it."""

    def __init__(self, engine: InfinityEngine) -> None:
        self._engine = engine
        self.gate = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    async def embed_images(self, images: list[Image.Image]) -> list[list[float]]:
        await self.gate.wait()
        return await self._engine.embed_images(images)


@pytest.fixture(scope="module")
async def demo_engine() -> AsyncIterator[InfinityEngine]:
    engine = InfinityEngine(EmbeddingSettings(model="demo", device="cpu", timeout_s=60))
    await engine.start()
    yield engine
    await engine.stop()


async def _index_with_the_tiny_model(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine, media_dir: Path
) -> list[str]:
    for i in range(4):
        noise(48, 48, seed=40 + i).save(media_dir / f"{i}.png")
    services = await build_services(make_settings(), engine=tiny_engine)
    try:
        records = await services.orchestrator.batch_process_files(sorted(media_dir.iterdir()))
        assert {r.status for r in records} == {"indexed"}
        return [r.id for r in records]
    finally:
        await services.aclose()


async def test_search_keeps_the_old_model_until_the_new_index_is_complete(
    make_settings: Callable[..., Settings],
    tiny_engine: InfinityEngine,
    demo_engine: InfinityEngine,
    media_dir: Path,
) -> None:
    file_ids = await _index_with_the_tiny_model(make_settings, tiny_engine, media_dir)
    [tiny_query] = await tiny_engine.embed_texts(["a red circle"])
    gated = GatedEngine(demo_engine)
    services = await build_services(make_settings(embedding={"model": "demo"}), engine=gated)  # type: ignore[arg-type]
    try:
        [switch] = services.adapter.switches
        assert (switch.kind, switch.old_model, switch.new_model) == (
            "visual",
            tiny_engine.model_id,
            demo_engine.model_id,
        )
        old_collection = services.adapter.serving_collection("visual")
        assert old_collection != services.adapter.collection_of("visual")
        # every file is waiting for the new model, and search still finds every one of
        # them, ranked by the old model (the query embedded by the old model)
        assert (await services.adapter.status_counts()).get("indexed", 0) == 0
        hits = (await services.searcher.by_text("a red circle", SearchOptions(limit=10))).hits
        assert sorted(h.file.id for h in hits) == sorted(file_ids)
        own = await services.adapter.search(tiny_query, limit=10, collection=old_collection)
        assert [h.file.id for h in hits] == [h.file.id for h in own]

        gated.gate.set()
        await services.orchestrator.wait_idle()
        assert services.adapter.switches == []
        assert services.adapter.serving_collection("visual") == services.adapter.collection_of(
            "visual"
        )
        assert await services.adapter._vectors.list_collections() == [
            services.adapter.collection_of("visual")
        ]
        assert services.outgoing == {}  # the old model was let go
        counts = await services.adapter.status_counts()
        assert counts == {"indexed": 4}
        # queries now go to the new model and its collection
        [demo_query] = await demo_engine.embed_texts(["a red circle"])
        # (every file, however weak a match: the demo model's floor would cut noise images)
        everything = SearchOptions(limit=10, min_score=-1)
        hits = (await services.searcher.by_text("a red circle", everything)).hits
        own = await services.adapter.search(demo_query, limit=10)
        assert [h.file.id for h in hits] == [h.file.id for h in own]
        for hit, mine in zip(hits, own, strict=True):
            assert hit.score == pytest.approx(mine.score, abs=1e-5)
    finally:
        await services.aclose()


async def test_a_switch_cut_short_resumes_and_completes(
    make_settings: Callable[..., Settings],
    tiny_engine: InfinityEngine,
    demo_engine: InfinityEngine,
    media_dir: Path,
) -> None:
    file_ids = await _index_with_the_tiny_model(make_settings, tiny_engine, media_dir)
    settings = make_settings(embedding={"model": "demo"})
    gated = GatedEngine(demo_engine)
    services = await build_services(settings, engine=gated)  # type: ignore[arg-type]
    await services.aclose()  # stopped with nothing re-indexed

    services = await build_services(settings, engine=demo_engine)
    try:
        # resumed, not restarted: still searchable from the old collection meanwhile
        hits = (await services.searcher.by_text("a red circle", SearchOptions(limit=10))).hits
        assert sorted(h.file.id for h in hits) == sorted(file_ids)

        async def switched() -> bool:
            return not services.adapter.switches

        await wait_for(switched)
        await services.orchestrator.wait_idle()
        assert await services.adapter.status_counts() == {"indexed": 4}
        assert len(await services.adapter._vectors.list_collections()) == 1
        assert (await services.adapter.stored_models())["visual"][0] == demo_engine.model_id
    finally:
        await services.aclose()

    # back on the old model afterwards: a plain switch again, not a mix
    services = await build_services(make_settings(), engine=tiny_engine)
    try:
        assert [s.new_model for s in services.adapter.switches] == [tiny_engine.model_id]
    finally:
        await services.aclose()


async def test_sound_search_keeps_the_old_sound_model_during_its_switch(
    make_settings: Callable[..., Settings],
    tiny_engine: InfinityEngine,
    tiny_clap_dir: Path,
    media_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sound model changes (a tiny CLAP, then the demo one): until every sound is
    heard again, sound queries are embedded by the old CLAP for the old collection."""
    windows = {"window_seconds": 4, "hop_seconds": 2}
    paths = [tone(media_dir / f"{i}.wav", 3.0, frequency=300 + 700 * i) for i in range(3)]
    services = await build_services(
        make_settings(audio={**windows, "model": str(tiny_clap_dir)}), engine=tiny_engine
    )
    try:
        records = await services.orchestrator.batch_process_files(paths)
        assert {r.status for r in records} == {"indexed"}
        old_model = services.engines.get(EngineKind.AUDIO).model_id
    finally:
        await services.aclose()

    gate = asyncio.Event()
    hear = InfinityEngine.embed_audio

    async def gated(self: InfinityEngine, clips: list[bytes]) -> list[list[float]]:
        await gate.wait()  # indexing waits; queries take the query lane, which does not
        return await hear(self, clips)

    monkeypatch.setattr(InfinityEngine, "embed_audio", gated)
    sounds = SearchOptions(limit=10, modalities=("audio",))
    services = await build_services(
        make_settings(audio={**windows, "model": "demo"}), engine=tiny_engine
    )
    try:
        [switch] = services.adapter.switches
        assert (switch.kind, switch.old_model) == ("audio", old_model)
        assert list(services.outgoing) == [EngineKind.AUDIO]
        hits = (await services.searcher.by_text("a high beep", sounds)).hits
        assert sorted({h.file.id for h in hits}) == sorted(r.id for r in records)
        gate.set()
        await services.orchestrator.wait_idle()
        assert services.adapter.switches == [] and services.outgoing == {}
        hits = (await services.searcher.by_text("a high beep", sounds)).hits
        assert sorted({h.file.id for h in hits}) == sorted(r.id for r in records)
    finally:
        await services.aclose()
