"""Picks the embedding engine from settings."""

from __future__ import annotations

from pathlib import Path

from msearch.config import EmbeddingSettings
from msearch.embedding.base import EmbeddingEngine
from msearch.embedding.infinity import InfinityEngine


def create_engine(settings: EmbeddingSettings, *, cache_dir: Path | None = None) -> EmbeddingEngine:
    return InfinityEngine(settings, cache_dir=cache_dir)
