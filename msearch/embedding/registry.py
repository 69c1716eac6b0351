"""The engines msearch runs side by side, keyed by what they embed.

Each engine has a model, a collection and a dimension of its own: ``visual`` (CLIP, images
and video frames) today; ``audio`` (CLAP), ``speech`` and ``document`` plug in here. Search
asks every engine that reads the query; their scores are not comparable, so results are
merged by rank (``search.fuse_by_rank``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from enum import StrEnum

from msearch.embedding.base import EmbeddingEngine


class EngineKind(StrEnum):
    VISUAL = "visual"
    AUDIO = "audio"
    SPEECH = "speech"
    DOCUMENT = "document"


class QueryKind(StrEnum):
    TEXT = "text"
    IMAGE = "image"


# What each kind of engine takes as a query, by default.
READS: dict[EngineKind, frozenset[QueryKind]] = {
    EngineKind.VISUAL: frozenset({QueryKind.TEXT, QueryKind.IMAGE}),
    EngineKind.AUDIO: frozenset({QueryKind.TEXT}),
    EngineKind.SPEECH: frozenset({QueryKind.TEXT}),
    EngineKind.DOCUMENT: frozenset({QueryKind.TEXT, QueryKind.IMAGE}),
}

# The pictures of which media types each kind of engine embeds, by default (media types by
# name, as ``media.detect.MediaType`` spells them).
EMBEDS: dict[EngineKind, frozenset[str]] = {
    EngineKind.VISUAL: frozenset({"image", "video"}),
    EngineKind.AUDIO: frozenset(),
    EngineKind.SPEECH: frozenset(),
    EngineKind.DOCUMENT: frozenset(),
}


class EngineRegistry:
    """Engines by kind, in a stable order (the order they were registered). What an engine
    embeds and reads defaults to its kind's (``EMBEDS``, ``READS``)."""

    def __init__(
        self,
        engines: Mapping[EngineKind, EmbeddingEngine],
        *,
        embeds: Mapping[EngineKind, frozenset[str]] | None = None,
        reads: Mapping[EngineKind, frozenset[QueryKind]] | None = None,
    ) -> None:
        if not engines:
            raise ValueError("at least one engine is required")
        self._engines = dict(engines)
        self._embeds = {k: (embeds or {}).get(k, EMBEDS[k]) for k in self._engines}
        self._reads = {k: (reads or {}).get(k, READS[k]) for k in self._engines}

    def __iter__(self) -> Iterator[tuple[EngineKind, EmbeddingEngine]]:
        return iter(self._engines.items())

    def __len__(self) -> int:
        return len(self._engines)

    def __contains__(self, kind: object) -> bool:
        return kind in self._engines

    @property
    def kinds(self) -> list[EngineKind]:
        return list(self._engines)

    def get(self, kind: EngineKind) -> EmbeddingEngine:
        try:
            return self._engines[kind]
        except KeyError:
            raise KeyError(f"no {kind} engine is configured") from None

    def reading(self, query: QueryKind) -> list[tuple[EngineKind, EmbeddingEngine]]:
        """The engines a query of this kind is asked of."""
        return [(k, e) for k, e in self._engines.items() if query in self._reads[k]]

    def embedding(self, media_type: str) -> list[tuple[EngineKind, EmbeddingEngine]]:
        """The engines that embed the pictures of this media type."""
        return [(k, e) for k, e in self._engines.items() if media_type in self._embeds[k]]

    def replaced(self, kind: EngineKind, engine: EmbeddingEngine) -> EngineRegistry:
        """The same registry with another engine for ``kind`` (a model switch's old model
        answering queries, then the new one)."""
        return EngineRegistry(
            {**self._engines, kind: engine}, embeds=self._embeds, reads=self._reads
        )

    def for_queries(self) -> EngineRegistry:
        """The same engines through their query lanes."""
        return EngineRegistry(
            {k: e.for_queries() for k, e in self._engines.items()},
            embeds=self._embeds,
            reads=self._reads,
        )

    async def start(self) -> None:
        for engine in self._engines.values():  # one at a time: each loads a model
            await engine.start()

    async def stop(self) -> None:
        await asyncio.gather(*(e.stop() for e in self._engines.values()))
