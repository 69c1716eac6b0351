"""Engines side by side: a collection each, every file embedded by each engine that embeds
its type, and search asking every engine that reads the query, merged by rank."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from support.app import api_client, wait_for
from support.media_factory import noise

from msearch.config import EmbeddingSettings, Settings
from msearch.embedding.infinity import InfinityEngine
from msearch.embedding.registry import EngineKind, EngineRegistry
from msearch.search import fuse_by_rank
from msearch.store.metadata import MetadataStore


async def test_an_index_of_the_single_model_era_keeps_its_model_as_the_visual_one(
    tmp_path: Path,
) -> None:
    store = MetadataStore(tmp_path / "m.db")
    await store.open()
    await store.set_model("clip", 512, "msearch_clip_0_512", "visual")
    await store.close()
    raw = sqlite3.connect(tmp_path / "m.db")  # as version 3 left it
    raw.execute("ALTER TABLE models DROP COLUMN source")
    raw.execute("ALTER TABLE files DROP COLUMN audio")
    raw.execute("ALTER TABLE files DROP COLUMN document")  # migration 8
    raw.executescript(  # and without the words of files (migration 7)
        "DROP TRIGGER passages_added; DROP TRIGGER passages_removed; "
        "DROP TABLE passages_fts; DROP TABLE passages;"
    )
    raw.execute("UPDATE models SET role = 'active'")
    raw.execute("PRAGMA user_version = 3")
    raw.commit()
    raw.close()
    reopened = MetadataStore(tmp_path / "m.db")
    await reopened.open()
    try:
        assert await reopened.get_models() == {"visual": ("clip", 512, "msearch_clip_0_512")}
    finally:
        await reopened.close()


@pytest.fixture(scope="module")
async def second_engine() -> AsyncIterator[InfinityEngine]:
    """The demo model (another architecture size: 128-d) as a second kind of engine."""
    engine = InfinityEngine(EmbeddingSettings(model="demo", device="cpu", timeout_s=60))
    await engine.start()
    yield engine
    await engine.stop()


async def test_two_engines_index_into_their_own_collections_and_search_is_fused(
    make_settings: Callable[..., Settings],
    tiny_engine: InfinityEngine,
    second_engine: InfinityEngine,
    media_dir: Path,
) -> None:
    for i in range(6):
        noise(48, 48, seed=i).save(media_dir / f"{i}.png")
    registry = EngineRegistry(
        {EngineKind.VISUAL: tiny_engine, EngineKind.DOCUMENT: second_engine},
        embeds={EngineKind.DOCUMENT: frozenset({"image"})},
    )
    settings = make_settings()
    async with api_client(settings, registry) as client:
        job = (
            await client.post("/api/v1/files/batch-process", json={"paths": [str(media_dir)]})
        ).json()

        async def finished() -> bool:
            return bool((await client.get(job["status_url"])).json()["status"] == "finished")

        await wait_for(finished)
        health = (await client.get("/health")).json()
        assert [(e["kind"], e["dim"], e["vectors"]) for e in health["engines"]] == [
            ("visual", 64, 6),
            ("document", 128, 6),
        ]
        services = client.app.state.services  # type: ignore[attr-defined]
        collections = {services.adapter.collection_of(k) for k in ("visual", "document")}
        assert len(collections) == 2

        body = (
            await client.post(
                "/api/v1/search/text",
                json={"query": "a red circle", "limit": 6, "min_score": -1},
            )
        ).json()
        results = body["results"]
        assert len(results) == 6 and {r["kind"] for r in results} <= {"visual", "document"}
        ranks = [r["rank_score"] for r in results]
        assert ranks == sorted(ranks, reverse=True)
        # the fused order is reciprocal-rank fusion of each engine's own ranking (the query
        # embedded as searches embed it, on the engine's query lane)
        own = {
            kind: await services.adapter.search(
                (await engine.for_queries().embed_texts(["a red circle"]))[0], limit=6, kind=kind
            )
            for kind, engine in (("visual", tiny_engine), ("document", second_engine))
        }
        expected = fuse_by_rank(list(own.values()), by_file=False)
        assert [r["file_id"] for r in results] == [h.file.id for h in expected]
        for result in results:
            [mine] = [h for h in own[result["kind"]] if h.file.id == result["file_id"]]
            assert result["score"] == pytest.approx(mine.score, abs=1e-5)
        # by default, a calibrated engine's (the demo model's) weak matches are left out of
        # its own list before the fusion, and counted; the uncalibrated engine's all stay
        floor = second_engine.relevance_floor
        assert floor is not None
        default = (
            await client.post("/api/v1/search/text", json={"query": "a red circle", "limit": 6})
        ).json()
        kept = [h for h in own["document"] if h.score >= floor]
        expected = fuse_by_rank([own["visual"], kept], by_file=False)
        assert [r["file_id"] for r in default["results"]] == [h.file.id for h in expected][:6]
        assert default["weaker"] == len(own["document"]) - len(kept) > 0

        paged = (
            await client.post(
                "/api/v1/search/text",
                json={"query": "a red circle", "limit": 2, "offset": 2, "min_score": -1},
            )
        ).json()["results"]
        assert [r["file_id"] for r in paged] == [r["file_id"] for r in results[2:4]]

        # more like this: each engine compares the file as it embedded it
        similar = (
            await client.post(
                "/api/v1/search/image", json={"file_id": results[0]["file_id"], "limit": 5}
            )
        ).json()["results"]
        assert len(similar) == 5 and results[0]["file_id"] not in {r["file_id"] for r in similar}

        # deleting a file takes its vectors out of every collection
        gone = results[0]["file_id"]
        assert await services.adapter.delete_file(gone)
        counts = await services.adapter.vector_counts()
        assert counts == {"visual": 5, "document": 5}

    # a restart with the same engines keeps both collections and their vectors
    async with api_client(settings, registry) as client:
        health = (await client.get("/health")).json()
        assert [e["vectors"] for e in health["engines"]] == [5, 5]
    # and without the second engine: search serves the visual one alone
    async with api_client(settings, tiny_engine) as client:
        body = (await client.post("/api/v1/search/text", json={"query": "a red circle"})).json()
        assert {r["kind"] for r in body["results"]} == {"visual"}
        assert all("rank_score" not in r for r in body["results"])


async def test_an_engine_added_to_an_index_embeds_every_file_while_search_answers(
    make_settings: Callable[..., Settings],
    tiny_engine: InfinityEngine,
    second_engine: InfinityEngine,
    media_dir: Path,
) -> None:
    from msearch.search import SearchOptions
    from msearch.services import build_services

    for i in range(4):
        noise(48, 48, seed=60 + i).save(media_dir / f"{i}.png")
    settings = make_settings()
    services = await build_services(settings, engine=tiny_engine)
    try:
        await services.orchestrator.batch_process_files(sorted(media_dir.iterdir()))
    finally:
        await services.aclose()
    registry = EngineRegistry(
        {EngineKind.VISUAL: tiny_engine, EngineKind.DOCUMENT: second_engine},
        embeds={EngineKind.DOCUMENT: frozenset({"image"})},
    )
    services = await build_services(settings, engines=registry)
    try:
        [switch] = services.adapter.switches
        assert (switch.kind, switch.old_model) == ("document", None)
        # the visual collection keeps answering for the files waiting for the new engine
        hits = (await services.searcher.by_text("a red circle", SearchOptions(limit=10))).hits
        assert len({h.file.id for h in hits}) == 4
        await services.orchestrator.wait_idle()
        assert services.adapter.switches == []
        assert await services.adapter.vector_counts() == {"visual": 4, "document": 4}
    finally:
        await services.aclose()
