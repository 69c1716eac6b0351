"""Embedding engines: pixels and words in, unit vectors out."""

from msearch.embedding.base import EmbeddingEngine

__all__ = ["EmbeddingEngine"]
