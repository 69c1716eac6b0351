"""Qdrant through ``qdrant-client``: a server or cluster URL (the scale-out path), or the
client's local mode (``path``/``:memory:``), which stands in for a server in tests."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import numpy as np
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from msearch.config import QdrantSettings
from msearch.errors import StoreError
from msearch.store.records import VectorFilter, VectorHit, VectorPoint
from msearch.store.vectors import FLOAT_FIELDS, KEYWORD_FIELDS, POOLED, TOKENS, pooled

_SCROLL_PAGE = 2048

# Local mode (the test stand-in for a server) warns that indexes and HNSW parameters do
# nothing there; they matter on a real server, so we keep sending them.
warnings.filterwarnings("ignore", message="Payload indexes have no effect in the local Qdrant")
warnings.filterwarnings("ignore", message="Local mode performs exact")


def _client_filter(flt: VectorFilter | None) -> qm.Filter | None:
    if flt is None or flt.empty:
        return None
    must: list[Any] = []
    must_not: list[Any] = []
    if flt.media_types:
        must.append(
            qm.FieldCondition(key="media_type", match=qm.MatchAny(any=list(flt.media_types)))
        )
    if flt.folder:
        must.append(qm.FieldCondition(key="dirs", match=qm.MatchValue(value=flt.folder)))
    if flt.taken_after is not None or flt.taken_before is not None:
        must.append(
            qm.FieldCondition(
                key="taken_at", range=qm.Range(gte=flt.taken_after, lte=flt.taken_before)
            )
        )
    if flt.exclude_file_ids:
        must_not.append(
            qm.FieldCondition(key="file_id", match=qm.MatchAny(any=list(flt.exclude_file_ids)))
        )
    return qm.Filter(must=must or None, must_not=must_not or None)


class RemoteVectorStore:
    """VectorStore on ``qdrant-client`` (sync client, run in threads)."""

    def __init__(self, client: QdrantClient, settings: QdrantSettings) -> None:
        self._client = client
        self._settings = settings
        self._known: set[str] = set()
        self._multivector: set[str] = set()

    @classmethod
    def connect(cls, settings: QdrantSettings) -> RemoteVectorStore:
        if not settings.url:
            raise StoreError("qdrant.url is not set")
        if settings.url == ":memory:":
            client = QdrantClient(location=":memory:")
        elif settings.url.startswith(("http://", "https://")):
            client = QdrantClient(url=settings.url, api_key=settings.api_key, timeout=30)
        else:
            client = QdrantClient(path=settings.url.removeprefix("file://"))
        return cls(client, settings)

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except (ValueError, KeyError) as exc:
            raise StoreError(f"qdrant: {exc}") from exc
        except Exception as exc:
            if exc.__class__.__module__.startswith(("qdrant_client", "httpx", "grpc")):
                raise StoreError(f"qdrant is unavailable: {exc}") from exc
            raise

    def _ensure(self, name: str, dim: int, multivector: bool) -> None:
        if multivector:
            self._multivector.add(name)
        if name in self._known:
            return
        if not self._client.collection_exists(name):
            vectors: Any = qm.VectorParams(size=dim, distance=qm.Distance.COSINE)
            if multivector:
                vectors = {
                    TOKENS: qm.VectorParams(
                        size=dim,
                        distance=qm.Distance.COSINE,
                        multivector_config=qm.MultiVectorConfig(
                            comparator=qm.MultiVectorComparator.MAX_SIM
                        ),
                        hnsw_config=qm.HnswConfigDiff(m=0),  # it reranks: no index
                    ),
                    POOLED: qm.VectorParams(size=dim, distance=qm.Distance.COSINE),
                }
            self._client.create_collection(
                name,
                vectors_config=vectors,
                hnsw_config=qm.HnswConfigDiff(
                    m=self._settings.hnsw_m, ef_construct=self._settings.hnsw_ef_construct
                ),
            )
            for field in KEYWORD_FIELDS:
                self._client.create_payload_index(name, field, qm.PayloadSchemaType.KEYWORD)
            for field in FLOAT_FIELDS:
                self._client.create_payload_index(name, field, qm.PayloadSchemaType.FLOAT)
        self._known.add(name)

    async def ensure_collection(self, name: str, dim: int, *, multivector: bool = False) -> None:
        await self._run(self._ensure, name, dim, multivector)

    async def list_collections(self) -> list[str]:
        response = await self._run(self._client.get_collections)
        return sorted(c.name for c in response.collections if c.name.startswith("msearch_"))

    async def drop_collection(self, name: str) -> None:
        self._known.discard(name)
        await self._run(self._client.delete_collection, name)

    async def upsert(self, name: str, points: list[VectorPoint]) -> None:
        if points:
            await self._run(
                self._client.upsert,
                name,
                wait=True,
                points=[
                    qm.PointStruct(id=p.id, vector=self._vectors(name, p), payload=p.payload)
                    for p in points
                ],
            )

    def _vectors(self, name: str, point: VectorPoint) -> Any:
        if name in self._multivector:
            tokens = point.tokens if point.tokens is not None else [point.vector]
            return {TOKENS: np.asarray(tokens, dtype=np.float32).tolist(), POOLED: point.vector}
        return point.vector

    async def clear(self, name: str) -> None:
        await self._run(
            self._client.delete,
            name,
            wait=True,
            points_selector=qm.FilterSelector(filter=qm.Filter()),
        )

    async def delete_points(self, name: str, ids: list[str]) -> None:
        if ids:
            await self._run(
                self._client.delete,
                name,
                wait=True,
                points_selector=qm.PointIdsList(points=list(ids)),
            )

    async def delete_files(self, name: str, file_ids: list[str]) -> None:
        if file_ids:
            selector = qm.FilterSelector(
                filter=qm.Filter(
                    must=[qm.FieldCondition(key="file_id", match=qm.MatchAny(any=list(file_ids)))]
                )
            )
            await self._run(self._client.delete, name, wait=True, points_selector=selector)

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
        response = await self._run(
            self._client.query_points,
            name,
            query=vector,
            using=POOLED if name in self._multivector else None,
            limit=limit,
            offset=offset or None,
            query_filter=_client_filter(filter),
            with_payload=True,
            with_vectors=False,
            score_threshold=score_threshold,
            search_params=qm.SearchParams(hnsw_ef=max(self._settings.search_ef, limit + offset)),
        )
        return [
            VectorHit(str(p.id), float(p.score), dict(p.payload or {})) for p in response.points
        ]

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
        wanted = max(candidates, limit + offset)
        response = await self._run(
            self._client.query_points,
            name,
            prefetch=qm.Prefetch(
                query=pooled(tokens),
                using=POOLED,
                limit=wanted,
                filter=_client_filter(filter),
                params=qm.SearchParams(hnsw_ef=max(self._settings.search_ef, wanted)),
            ),
            query=tokens,
            using=TOKENS,
            limit=limit,
            offset=offset or None,
            query_filter=_client_filter(filter),
            with_payload=True,
            with_vectors=False,
        )
        return [
            VectorHit(str(p.id), float(p.score), dict(p.payload or {})) for p in response.points
        ]

    def _file_point_ids(self, name: str) -> dict[str, set[str]]:
        grouped: dict[str, set[str]] = {}
        offset = None
        while True:
            records, offset = self._client.scroll(
                name,
                limit=_SCROLL_PAGE,
                offset=offset,
                with_payload=["file_id"],
                with_vectors=False,
            )
            for record in records:
                file_id = str((record.payload or {}).get("file_id", ""))
                grouped.setdefault(file_id, set()).add(str(record.id))
            if offset is None:
                return grouped

    async def file_point_ids(self, name: str) -> dict[str, set[str]]:
        return dict(await self._run(self._file_point_ids, name))

    async def retrieve_vectors(self, name: str, ids: list[str]) -> dict[str, list[float]]:
        if not ids:
            return {}
        records = await self._run(
            self._client.retrieve, name, ids=list(ids), with_payload=False, with_vectors=True
        )
        vectors = {}
        for record in records:
            vector = record.vector
            if isinstance(vector, dict):  # a multi-vector collection's point: its summary
                vector = vector.get(POOLED)
            if isinstance(vector, list):
                vectors[str(record.id)] = list(vector)
        return vectors

    async def count(self, name: str) -> int:
        response = await self._run(self._client.count, name, exact=True)
        return int(response.count)

    async def optimize(self, name: str) -> None:
        # A server optimises in the background by itself.
        return None

    async def close(self) -> None:
        await self._run(self._client.close)
