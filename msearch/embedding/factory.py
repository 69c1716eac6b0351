"""Picks the embedding engine from settings."""

from __future__ import annotations

from pathlib import Path

from msearch.config import EmbeddingSettings
from msearch.embedding.base import EmbeddingEngine
from msearch.embedding.batching import CoalescingEngine
from msearch.embedding.infinity import InfinityEngine
from msearch.embedding.remote import RemoteInfinityEngine


def create_engine(settings: EmbeddingSettings, *, cache_dir: Path | None = None) -> EmbeddingEngine:
    """Infinity in-process, or an Infinity server (``embedding.url``); either way fed full
    batches by the coalescer."""
    inner: EmbeddingEngine = (
        RemoteInfinityEngine(settings)
        if settings.url
        else InfinityEngine(settings, cache_dir=cache_dir)
    )
    return CoalescingEngine(inner, max_batch=settings.batch_size)
