"""Picks the embedding engine from settings."""

from __future__ import annotations

from pathlib import Path

from msearch.config import EmbeddingSettings
from msearch.embedding.base import EmbeddingEngine
from msearch.embedding.batching import CoalescingEngine
from msearch.embedding.infinity import InfinityEngine


def create_engine(settings: EmbeddingSettings, *, cache_dir: Path | None = None) -> EmbeddingEngine:
    """Infinity in-process, fed full batches by the coalescer."""
    return CoalescingEngine(
        InfinityEngine(settings, cache_dir=cache_dir), max_batch=settings.batch_size
    )
