"""Qdrant Edge: the embedded default. One shard (directory) per collection."""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import qdrant_edge as qe

from msearch.config import QdrantSettings
from msearch.errors import StoreError
from msearch.store.records import VectorFilter, VectorHit, VectorPoint
from msearch.store.vectors import (
    FLOAT_FIELDS,
    KEYWORD_FIELDS,
    POOLED,
    RESULT_FIELDS,
    TOKENS,
    pooled,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")

_SCROLL_PAGE = 2048
# Names under the vectors folder that are not collections.
_STAGING = ".new-"
_BROKEN = ".broken-"


def _edge_filter(flt: VectorFilter | None) -> qe.Filter | None:
    if flt is None or flt.empty:
        return None
    must: list[Any] = []
    must_not: list[Any] = []
    if flt.media_types:
        must.append(qe.FieldCondition("media_type", match=qe.MatchAny(list(flt.media_types))))
    if flt.folder:
        must.append(qe.FieldCondition("dirs", match=qe.MatchValue(flt.folder)))
    if flt.taken_after is not None or flt.taken_before is not None:
        must.append(
            qe.FieldCondition(
                "taken_at", range=qe.RangeFloat(gte=flt.taken_after, lte=flt.taken_before)
            )
        )
    if flt.exclude_file_ids:
        must_not.append(qe.FieldCondition("file_id", match=qe.MatchAny(list(flt.exclude_file_ids))))
    return qe.Filter(must=must or None, must_not=must_not or None)


def _tokens(point: VectorPoint) -> Any:
    """A point's token vectors as Qdrant Edge takes them (an array is not copied)."""
    return point.tokens if point.tokens is not None else [point.vector]


def _file_filter(file_ids: list[str]) -> qe.Filter:
    return qe.Filter(must=[qe.FieldCondition("file_id", match=qe.MatchAny(file_ids))])


class EdgeVectorStore:
    """VectorStore on ``qdrant-edge-py``; calls run in threads off the event loop."""

    def __init__(self, root: Path, settings: QdrantSettings) -> None:
        self._root = root
        self._settings = settings
        self._shards: dict[str, Any] = {}
        self._multivector: set[str] = set()
        self._lock = threading.Lock()
        # Searches have threads of their own: indexing's writes never hold them up.
        self._reads = ThreadPoolExecutor(4, thread_name_prefix="msearch-qdrant-read")
        self._writes = ThreadPoolExecutor(1, thread_name_prefix="msearch-qdrant-write")
        self._closed = False

    async def _in(self, pool: ThreadPoolExecutor, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(pool, partial(fn, *args))

    def _config(self, dim: int | None, multivector: bool = False) -> qe.EdgeConfig:
        vectors: Any = None
        if dim is not None and multivector:
            vectors = {
                TOKENS: qe.EdgeVectorParams(
                    size=dim,
                    distance=qe.Distance.Cosine,
                    multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim),
                    # it reranks: no index
                    hnsw_config=qe.HnswIndexConfig(
                        m=0,
                        ef_construct=self._settings.hnsw_ef_construct,
                        full_scan_threshold=10_000,
                    ),
                ),
                POOLED: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine),
            }
        elif dim is not None:
            vectors = qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)
        return qe.EdgeConfig(
            vectors=vectors,
            hnsw_config=qe.HnswIndexConfig(
                m=self._settings.hnsw_m,
                ef_construct=self._settings.hnsw_ef_construct,
                full_scan_threshold=10_000,
            ),
        )

    def _shard(self, name: str) -> Any:
        with self._lock:
            shard = self._shards.get(name)
            if shard is None:
                path = self._root / name
                if not path.is_dir():
                    raise StoreError(f"vector collection {name!r} does not exist")
                try:
                    shard = qe.EdgeShard.load(str(path))
                except Exception as exc:
                    raise StoreError(f"cannot open vector collection {name!r}: {exc}") from exc
                self._shards[name] = shard
            return shard

    def _create(self, path: Path, dim: int, multivector: bool) -> None:
        """Build a complete empty collection beside ``path``, then move it in: a crash
        leaves either no collection or a whole one, never a half-made one."""
        staging = self._root / f"{_STAGING}{path.name}-{uuid.uuid4().hex[:8]}"
        shard = qe.EdgeShard.create(str(staging), self._config(dim, multivector))
        try:
            for field in KEYWORD_FIELDS:
                shard.update(
                    qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Keyword)
                )
            for field in FLOAT_FIELDS:
                shard.update(
                    qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Float)
                )
            shard.flush()
        finally:
            shard.close()
        staging.rename(path)

    def _ensure(self, name: str, dim: int, multivector: bool) -> None:
        path = self._root / name
        with self._lock:
            if multivector:
                self._multivector.add(name)
            if name in self._shards:
                return
            try:
                self._root.mkdir(parents=True, exist_ok=True)
                self._remove_leftovers(name)
                if path.is_dir() and any(path.iterdir()):
                    shard = self._load_or_repair(path, dim, multivector)
                else:
                    if path.exists():
                        path.rmdir()
                    self._create(path, dim, multivector)
                    shard = qe.EdgeShard.load(str(path))
            except Exception as exc:
                raise StoreError(f"cannot open vector collection {name!r}: {exc}") from exc
            self._shards[name] = shard

    def _load_or_repair(self, path: Path, dim: int, multivector: bool) -> Any:
        """Load a collection; one that cannot be loaded (a crash while it was written by an
        older msearch, a damaged disk) is set aside and replaced by an empty one. Its
        files' vectors are then missing, and reconciliation re-indexes them from the
        originals: slower than a load, but the service starts."""
        try:
            return qe.EdgeShard.load(str(path))
        except Exception as exc:
            aside = self._root / f"{_BROKEN}{path.name}-{int(time.time())}"
            log.error(
                "vector collection %s cannot be loaded (%s); it is moved to %s and "
                "rebuilt: its files are indexed again",
                path.name,
                exc,
                aside,
            )
            path.rename(aside)
        self._create(path, dim, multivector)
        return qe.EdgeShard.load(str(path))

    def _remove_leftovers(self, name: str) -> None:
        for leftover in self._root.glob(f"{_STAGING}{name}-*"):
            shutil.rmtree(leftover, ignore_errors=True)

    async def ensure_collection(self, name: str, dim: int, *, multivector: bool = False) -> None:
        await self._in(self._writes, self._ensure, name, dim, multivector)

    def _list(self) -> list[str]:
        if not self._root.is_dir():
            return []
        return sorted(
            p.name for p in self._root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )

    async def list_collections(self) -> list[str]:
        return await self._in(self._reads, self._list)

    def _drop(self, name: str) -> None:
        with self._lock:
            shard = self._shards.pop(name, None)
            if shard is not None:
                shard.close()
            shutil.rmtree(self._root / name, ignore_errors=True)

    async def drop_collection(self, name: str) -> None:
        await self._in(self._writes, self._drop, name)

    async def upsert(self, name: str, points: list[VectorPoint]) -> None:
        if not points:
            return
        shard = self._shard(name)
        if name in self._multivector:
            edge_points = [
                qe.Point(p.id, {TOKENS: _tokens(p), POOLED: p.vector}, p.payload) for p in points
            ]
        else:
            edge_points = [qe.Point(p.id, p.vector, p.payload) for p in points]
        await self._in(self._writes, shard.update, qe.UpdateOperation.upsert_points(edge_points))

    async def delete_points(self, name: str, ids: list[str]) -> None:
        if ids:
            shard = self._shard(name)
            await self._in(self._writes, shard.update, qe.UpdateOperation.delete_points(list(ids)))

    async def clear(self, name: str) -> None:
        shard = self._shard(name)
        await self._in(
            self._writes,
            shard.update,
            qe.UpdateOperation.delete_points_by_filter(
                qe.Filter(must=[qe.FieldCondition("scene_index", range=qe.RangeFloat(gte=0))])
            ),
        )

    async def delete_files(self, name: str, file_ids: list[str]) -> None:
        if file_ids:
            shard = self._shard(name)
            await self._in(
                self._writes,
                shard.update,
                qe.UpdateOperation.delete_points_by_filter(_file_filter(file_ids)),
            )

    async def search(
        self,
        name: str,
        vector: list[float],
        *,
        limit: int,
        offset: int = 0,
        filter: VectorFilter | None = None,
        score_threshold: float | None = None,
    ) -> list[VectorHit]:
        shard = self._shard(name)
        using = POOLED if name in self._multivector else None
        request = qe.QueryRequest(
            limit=limit,
            offset=offset or None,
            query=qe.Query.Nearest(vector, using=using),
            filter=_edge_filter(filter),
            # the folder list for filters ("dirs") is the costliest part to convert
            with_payload=list(RESULT_FIELDS),
            with_vector=False,
            score_threshold=score_threshold,
            params=qe.SearchParams(hnsw_ef=max(self._settings.search_ef, limit + offset)),
        )
        points = await self._in(self._reads, shard.query, request)
        return [VectorHit(str(p.id), float(p.score), dict(p.payload or {})) for p in points]

    async def search_tokens(
        self,
        name: str,
        tokens: list[list[float]],
        *,
        limit: int,
        offset: int = 0,
        filter: VectorFilter | None = None,
        candidates: int = 200,
    ) -> list[VectorHit]:
        shard = self._shard(name)
        wanted = max(candidates, limit + offset)
        request = qe.QueryRequest(
            limit=limit,
            offset=offset or None,
            prefetches=[
                qe.Prefetch(
                    limit=wanted,
                    query=qe.Query.Nearest(pooled(tokens), using=POOLED),
                    filter=_edge_filter(filter),
                    params=qe.SearchParams(hnsw_ef=max(self._settings.search_ef, wanted)),
                )
            ],
            query=qe.Query.Nearest(tokens, using=TOKENS),
            filter=_edge_filter(filter),
            with_payload=list(RESULT_FIELDS),
            with_vector=False,
        )
        points = await self._in(self._reads, shard.query, request)
        return [VectorHit(str(p.id), float(p.score), dict(p.payload or {})) for p in points]

    def _file_point_ids(self, name: str) -> dict[str, set[str]]:
        shard = self._shard(name)
        grouped: dict[str, set[str]] = {}
        offset = None
        while True:
            records, offset = shard.scroll(
                qe.ScrollRequest(
                    offset=offset, limit=_SCROLL_PAGE, with_payload=["file_id"], with_vector=False
                )
            )
            for record in records:
                file_id = str((record.payload or {}).get("file_id", ""))
                grouped.setdefault(file_id, set()).add(str(record.id))
            if offset is None:
                return grouped

    async def file_point_ids(self, name: str) -> dict[str, set[str]]:
        return await self._in(self._writes, self._file_point_ids, name)

    async def retrieve_vectors(self, name: str, ids: list[str]) -> dict[str, list[float]]:
        if not ids:
            return {}
        shard = self._shard(name)
        records = await self._in(self._reads, shard.retrieve, list(ids), False, True)
        vectors = {}
        for record in records:
            vector = record.vector
            if isinstance(vector, dict):  # a multi-vector collection's point: its summary
                vector = vector.get(POOLED)
            if vector is not None:
                vectors[str(record.id)] = list(vector)
        return vectors

    async def count(self, name: str) -> int:
        shard = self._shard(name)
        return int(await self._in(self._reads, shard.count, qe.CountRequest(exact=True)))

    async def optimize(self, name: str) -> None:
        shard = self._shard(name)
        await self._in(self._writes, shard.optimize)

    def _close(self) -> None:
        with self._lock:
            for shard in self._shards.values():
                shard.flush()
                shard.close()
            self._shards.clear()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._in(self._writes, self._close)
        self._reads.shutdown(wait=False)
        self._writes.shutdown(wait=False)
