"""The vector-store interface and what both Qdrant backends share."""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Protocol

import numpy as np
import numpy.typing as npt

from msearch.store.records import VectorFilter, VectorHit, VectorPoint

# Payload fields with an index: every field a search can filter on.
KEYWORD_FIELDS = ("file_id", "media_type", "dirs")
FLOAT_FIELDS = ("taken_at",)
# What a search hit needs of its payload (the rest serves filters).
RESULT_FIELDS = (
    "file_id",
    "path",
    "folder",
    "media_type",
    "scene_index",
    "start",
    "end",
    "keyframe",
    "window",
    "duration",
    "page",
)

_POINT_NAMESPACE = uuid.UUID("6f1d7c1e-4b7a-4c55-9d0e-5b0f4f2a9a11")


def point_id(file_id: str, scene_index: int) -> str:
    """Deterministic: re-processing a file overwrites its points, never duplicates them."""
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{file_id}:{scene_index}"))


def collection_name(model_id: str, model_source: str, dim: int) -> str:
    """One collection per model; the hash keeps two local models with one name apart."""
    slug = re.sub(r"[^a-z0-9]+", "_", model_id.lower()).strip("_")[:40] or "model"
    digest = hashlib.sha1(model_source.encode()).hexdigest()[:8]
    return f"msearch_{slug}_{digest}_{dim}"


# A multi-vector collection's two vectors per point: every token (scored by MaxSim, no
# index: it reranks) and their mean (an HNSW index finds the candidates).
TOKENS = "tokens"
POOLED = "pooled"


def pooled(tokens: npt.ArrayLike) -> list[float]:
    """The normalised mean of token vectors: a page's (or a query's) one-vector summary."""
    mean = np.asarray(tokens, dtype=np.float64).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    unit: list[float] = (mean / norm if norm > 0 else mean).tolist()
    return unit


def ancestor_dirs(folder: str) -> list[str]:
    """``/a/b/c`` -> ``["/", "/a", "/a/b", "/a/b/c"]``: a folder filter is one keyword match."""
    parts = [p for p in folder.split("/") if p]
    return ["/"] + ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


class VectorStore(Protocol):
    """Named collections of unit vectors with payloads (cosine similarity).

    Contract (tested on every backend): upserts with an existing id replace the point;
    ``search`` returns hits best first, honours the filter, limit, offset and score
    threshold; deleting unknown ids or files is a no-op; data survives ``close`` and a
    new instance on the same location.
    """

    async def ensure_collection(self, name: str, dim: int, *, multivector: bool = False) -> None:
        """``multivector``: points carry ``tokens`` (a vector per token, ``dim`` each)
        beside their pooled ``vector``, and are found with ``search_tokens``."""
        ...

    async def list_collections(self) -> list[str]: ...

    async def drop_collection(self, name: str) -> None: ...

    async def upsert(self, name: str, points: list[VectorPoint]) -> None: ...

    async def clear(self, name: str) -> None:
        """Remove every point; the collection stays, searchable (empty) throughout."""
        ...

    async def delete_points(self, name: str, ids: list[str]) -> None: ...

    async def delete_files(self, name: str, file_ids: list[str]) -> None: ...

    async def search(
        self,
        name: str,
        vector: list[float],
        *,
        limit: int,
        offset: int = 0,
        filter: VectorFilter | None = None,
        score_threshold: float | None = None,
    ) -> list[VectorHit]: ...

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
        """A multi-vector collection's points by MaxSim with the query's ``tokens`` (for
        each query token its best match among a point's tokens, summed), among the
        ``candidates`` whose pooled vectors are nearest the query's: exact when the
        collection holds no more points than that."""
        ...

    async def file_point_ids(self, name: str) -> dict[str, set[str]]:
        """Every point id grouped by its payload's file_id (for reconciliation)."""
        ...

    async def retrieve_vectors(self, name: str, ids: list[str]) -> dict[str, list[float]]: ...

    async def count(self, name: str) -> int: ...

    async def optimize(self, name: str) -> None: ...

    async def close(self) -> None: ...
