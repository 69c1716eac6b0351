"""Picks the vector-store backend from settings."""

from __future__ import annotations

from pathlib import Path

from msearch.config import QdrantSettings
from msearch.store.vectors import VectorStore


def create_vector_store(settings: QdrantSettings, data_dir: Path) -> VectorStore:
    """Qdrant Edge under the data directory unless ``qdrant.url`` names a server (or a
    qdrant-client local-mode path / ``:memory:``)."""
    if settings.url:
        from msearch.store.qdrant_remote import RemoteVectorStore

        return RemoteVectorStore.connect(settings)
    from msearch.store.qdrant_edge import EdgeVectorStore

    return EdgeVectorStore(data_dir / "vectors", settings)
