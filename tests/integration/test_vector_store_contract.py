"""One contract, every backend: Qdrant Edge (embedded default) and qdrant-client (server
path; its local mode stands in for a server here, in memory and on disk)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest

from msearch.config import QdrantSettings
from msearch.store.qdrant_edge import EdgeVectorStore
from msearch.store.qdrant_remote import RemoteVectorStore
from msearch.store.records import VectorFilter, VectorPoint
from msearch.store.vectors import VectorStore, ancestor_dirs, point_id, pooled

DIM = 8
Factory = Callable[[], VectorStore]


def _factories(tmp: Path) -> dict[str, Factory]:
    return {
        "edge": lambda: EdgeVectorStore(tmp / "edge", QdrantSettings()),
        "client-local-path": lambda: RemoteVectorStore.connect(
            QdrantSettings(url=str(tmp / "local"))
        ),
    }


@pytest.fixture(params=["edge", "client-local-path", "client-memory"])
async def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Factory]:
    if request.param == "client-memory":
        shared = RemoteVectorStore.connect(QdrantSettings(url=":memory:"))
        yield lambda: shared
        return
    yield _factories(tmp_path)[request.param]


def _unit(vec: list[float]) -> list[float]:
    arr = np.asarray(vec, dtype=np.float64)
    return list(arr / np.linalg.norm(arr))


def _point(
    file_id: str,
    vec: list[float],
    *,
    media: str = "image",
    folder: str = "/a",
    taken: float | None = None,
    scene: int = 0,
) -> VectorPoint:
    payload = {
        "file_id": file_id,
        "media_type": media,
        "dirs": ancestor_dirs(folder),
        "folder": folder,
    }
    if taken is not None:
        payload["taken_at"] = taken
    return VectorPoint(point_id(file_id, scene), _unit(vec), payload)


def _axis(i: int, noise: float = 0.0) -> list[float]:
    vec = [noise] * DIM
    vec[i] = 1.0
    return vec


async def _filled(factory: Factory) -> VectorStore:
    store = factory()
    await store.ensure_collection("c", DIM)
    await store.upsert(
        "c",
        [
            _point("f0", _axis(0), folder="/photos/2020", taken=100.0),
            _point("f1", _axis(0, 0.1), folder="/photos/2021", taken=200.0),
            _point("f2", _axis(0, 0.3), media="video", folder="/videos", taken=300.0),
            _point("f3", _axis(1, 0.05), folder="/photos/2021/summer"),
            _point("f4", _axis(2, 0.02), media="video", folder="/videos"),
        ],
    )
    return store


async def test_search_ranks_best_first_with_scores(store_factory: Factory) -> None:
    store = await _filled(store_factory)
    hits = await store.search("c", _unit(_axis(0)), limit=3)
    assert [h.payload["file_id"] for h in hits] == ["f0", "f1", "f2"]
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert hits[0].score >= hits[1].score >= hits[2].score
    await store.close()


async def test_filters_combine(store_factory: Factory) -> None:
    store = await _filled(store_factory)
    q = _unit(_axis(0))

    async def ids(flt: VectorFilter) -> list[str]:
        return [h.payload["file_id"] for h in await store.search("c", q, limit=10, filter=flt)]

    assert set(await ids(VectorFilter(media_types=("video",)))) == {"f2", "f4"}
    assert set(await ids(VectorFilter(folder="/photos/2021"))) == {"f1", "f3"}
    assert set(await ids(VectorFilter(folder="/photos"))) == {"f0", "f1", "f3"}
    assert set(await ids(VectorFilter(taken_after=150.0))) == {"f1", "f2"}
    assert set(await ids(VectorFilter(taken_after=150.0, taken_before=250.0))) == {"f1"}
    assert "f0" not in await ids(VectorFilter(exclude_file_ids=("f0",)))
    assert await ids(VectorFilter(media_types=("video",), folder="/photos")) == []
    await store.close()


async def test_limit_offset_and_threshold(store_factory: Factory) -> None:
    store = await _filled(store_factory)
    q = _unit(_axis(0))
    everything = [h.id for h in await store.search("c", q, limit=5)]
    page2 = [h.id for h in await store.search("c", q, limit=2, offset=2)]
    assert page2 == everything[2:4]
    strong = await store.search("c", q, limit=5, score_threshold=0.9)
    assert [h.payload["file_id"] for h in strong] == ["f0", "f1"]  # f2 scores ~0.83
    assert all(h.score >= 0.9 for h in strong)
    await store.close()


async def test_upsert_same_id_replaces(store_factory: Factory) -> None:
    store = await _filled(store_factory)
    await store.upsert("c", [_point("f0", _axis(3))])
    assert await store.count("c") == 5
    best = (await store.search("c", _unit(_axis(3)), limit=1))[0]
    assert best.payload["file_id"] == "f0"
    await store.close()


async def test_deletes_and_unknown_ids_are_noops(store_factory: Factory) -> None:
    store = await _filled(store_factory)
    await store.delete_points("c", [point_id("nope", 0)])
    await store.delete_files("c", ["nope"])
    assert await store.count("c") == 5
    await store.delete_files("c", ["f0", "f1"])
    await store.delete_points("c", [point_id("f2", 0)])
    assert await store.count("c") == 2
    grouped = await store.file_point_ids("c")
    assert grouped == {"f3": {point_id("f3", 0)}, "f4": {point_id("f4", 0)}}
    await store.close()


async def test_retrieve_vectors(store_factory: Factory) -> None:
    store = await _filled(store_factory)
    found = await store.retrieve_vectors("c", [point_id("f3", 0), point_id("missing", 0)])
    assert list(found) == [point_id("f3", 0)]
    assert np.allclose(found[point_id("f3", 0)], _unit(_axis(1, 0.05)), atol=1e-5)
    await store.close()


async def test_collections_are_separate_and_droppable(store_factory: Factory) -> None:
    store = await _filled(store_factory)
    await store.ensure_collection("other", 4)
    await store.upsert("other", [VectorPoint(point_id("x", 0), [1, 0, 0, 0], {"file_id": "x"})])
    assert {"c", "other"} <= set(await store.list_collections()) | {"c", "other"}
    assert await store.count("other") == 1 and await store.count("c") == 5
    await store.drop_collection("other")
    assert "other" not in await store.list_collections()
    await store.close()


async def test_data_survives_reopen(tmp_path: Path) -> None:
    for factory in _factories(tmp_path).values():
        store = await _filled(factory)
        await store.close()
        reopened = factory()
        await reopened.ensure_collection("c", DIM)
        assert await reopened.count("c") == 5
        hits = await reopened.search("c", _unit(_axis(1)), limit=1)
        assert hits[0].payload["file_id"] == "f3"
        await reopened.close()


async def test_optimized_edge_index_still_finds_neighbours(tmp_path: Path) -> None:
    rng = np.random.RandomState(0)
    store = EdgeVectorStore(tmp_path / "edge", QdrantSettings())
    await store.ensure_collection("c", 32)
    vectors = rng.randn(3000, 32)
    await store.upsert(
        "c",
        [
            VectorPoint(point_id(f"f{i}", 0), _unit(list(v)), {"file_id": f"f{i}"})
            for i, v in enumerate(vectors)
        ],
    )
    await store.optimize("c")
    hits = await store.search("c", _unit(list(vectors[1234])), limit=1)
    assert hits[0].payload["file_id"] == "f1234"
    await store.close()


def _tokens(rng: np.random.Generator, count: int) -> list[list[float]]:
    rows = rng.normal(size=(count, DIM))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).tolist()


def _maxsim(query: list[list[float]], page: list[list[float]]) -> float:
    return float((np.asarray(query) @ np.asarray(page).T).max(axis=1).sum())


async def test_multivector_pages_rank_as_numpy_maxsim_does(store_factory: Factory) -> None:
    """A page per point with a vector per token (ColQwen2's layout): MaxSim in the store
    equals MaxSim in numpy; the pooled first stage only narrows the candidates."""
    rng = np.random.default_rng(11)
    pages = {f"doc{i}": _tokens(rng, int(rng.integers(3, 13))) for i in range(30)}
    store = store_factory()
    await store.ensure_collection("docs", DIM, multivector=True)
    await store.upsert(
        "docs",
        [
            VectorPoint(
                point_id(name, 0),
                pooled(tokens),
                {**_point(name, tokens[0]).payload, "media_type": "document", "page": 1},
                tokens=tokens,
            )
            for name, tokens in pages.items()
        ],
    )
    query = _tokens(rng, 4)
    expected = sorted(pages, key=lambda name: -_maxsim(query, pages[name]))

    hits = await store.search_tokens("docs", query, limit=5)
    assert [h.payload["file_id"] for h in hits] == expected[:5]
    for hit in hits:
        assert hit.score == pytest.approx(_maxsim(query, pages[hit.payload["file_id"]]), abs=1e-4)
    later = await store.search_tokens("docs", query, limit=5, offset=5)
    assert [h.payload["file_id"] for h in later] == expected[5:10]

    # a first stage of 6: MaxSim order among the 6 pages whose means are nearest
    means = sorted(pages, key=lambda name: -float(np.dot(pooled(query), pooled(pages[name]))))
    narrowed = await store.search_tokens("docs", query, limit=3, candidates=6)
    among = sorted(means[:6], key=lambda name: -_maxsim(query, pages[name]))
    assert [h.payload["file_id"] for h in narrowed] == among[:3]

    kept = VectorFilter(exclude_file_ids=tuple(expected[:2]))
    filtered = await store.search_tokens("docs", query, limit=3, filter=kept)
    assert [h.payload["file_id"] for h in filtered] == expected[2:5]
    # one-vector search and retrieval see the pooled vector
    [best] = await store.search("docs", pooled(pages["doc7"]), limit=1)
    assert best.payload["file_id"] == "doc7"
    stored = await store.retrieve_vectors("docs", [point_id("doc7", 0)])
    assert np.allclose(stored[point_id("doc7", 0)], pooled(pages["doc7"]), atol=1e-5)
    await store.delete_files("docs", ["doc0"])
    assert await store.count("docs") == 29
    await store.close()
