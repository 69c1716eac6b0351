"""The engines msearch runs side by side, keyed by what they embed.

Each engine has a model, a collection and a dimension of its own: ``visual`` (CLIP, images
and video frames) today; ``audio`` (CLAP), ``speech`` and ``document`` plug in here. Search
asks every engine that reads the query; their scores are not comparable, so results are
merged by rank (``search.fuse_by_rank``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping
from enum import StrEnum

from msearch.embedding.base import EmbeddingEngine
from msearch.errors import EmbeddingError

log = logging.getLogger(__name__)


class EngineKind(StrEnum):
    VISUAL = "visual"
    AUDIO = "audio"
    SPEECH = "speech"
    DOCUMENT = "document"


class QueryKind(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"


# What each kind of engine takes as a query, by default.
READS: dict[EngineKind, frozenset[QueryKind]] = {
    EngineKind.VISUAL: frozenset({QueryKind.TEXT, QueryKind.IMAGE}),
    EngineKind.AUDIO: frozenset({QueryKind.TEXT, QueryKind.AUDIO}),
    EngineKind.SPEECH: frozenset({QueryKind.TEXT}),
    EngineKind.DOCUMENT: frozenset({QueryKind.TEXT}),
}

# The pictures of which media types each kind of engine embeds, by default (media types by
# name, as ``media.detect.MediaType`` spells them).
EMBEDS: dict[EngineKind, frozenset[str]] = {
    EngineKind.VISUAL: frozenset({"image", "video", "document"}),
    EngineKind.AUDIO: frozenset(),
    EngineKind.SPEECH: frozenset(),
    EngineKind.DOCUMENT: frozenset({"document"}),
}


# The sound of which media types each kind of engine embeds.
HEARS: dict[EngineKind, frozenset[str]] = {
    EngineKind.VISUAL: frozenset(),
    EngineKind.AUDIO: frozenset({"audio", "video"}),
    EngineKind.SPEECH: frozenset(),
    EngineKind.DOCUMENT: frozenset(),
}

# Every file needs these: a model that cannot load leaves msearch degraded. The others are
# optional: one that cannot load is left out, and msearch runs without it.
REQUIRED = frozenset({EngineKind.VISUAL})


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
        self._all = dict(engines)
        self._embeds = {k: (embeds or {}).get(k, EMBEDS[k]) for k in self._all}
        self._reads = {k: (reads or {}).get(k, READS[k]) for k in self._all}
        # optional engines that could not start, and why: shared by the registries derived
        # from this one, so that the searcher's view and the pipelines' agree
        self._unavailable: dict[EngineKind, str] = {}

    @property
    def _engines(self) -> dict[EngineKind, EmbeddingEngine]:
        return {k: e for k, e in self._all.items() if k not in self._unavailable}

    def __iter__(self) -> Iterator[tuple[EngineKind, EmbeddingEngine]]:
        return iter(self._engines.items())

    def __len__(self) -> int:
        return len(self._engines)

    def __contains__(self, kind: object) -> bool:
        return kind in self._engines

    @property
    def kinds(self) -> list[EngineKind]:
        return list(self._engines)

    @property
    def unavailable(self) -> dict[EngineKind, str]:
        """Optional engines that could not start, with the reason."""
        return dict(self._unavailable)

    def configured(self, kind: EngineKind) -> EmbeddingEngine | None:
        """The engine set up for ``kind``, whether it started or not."""
        return self._all.get(kind)

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

    def hearing(self, media_type: str) -> list[tuple[EngineKind, EmbeddingEngine]]:
        """The engines that embed the sound of this media type."""
        return [(k, e) for k, e in self._engines.items() if media_type in HEARS[k]]

    def kinds_for(self, media_type: str) -> list[EngineKind]:
        """Every kind that embeds something of this media type (pictures or sound)."""
        return [k for k in self._engines if media_type in self._embeds[k] or media_type in HEARS[k]]

    def media_types_of(self, kind: EngineKind) -> frozenset[str]:
        """The media types a kind embeds something of (pictures or sound)."""
        return self._embeds.get(kind, frozenset()) | HEARS[kind]

    def _derived(self, engines: Mapping[EngineKind, EmbeddingEngine]) -> EngineRegistry:
        registry = EngineRegistry(engines, embeds=self._embeds, reads=self._reads)
        registry._unavailable = self._unavailable
        return registry

    def replaced(self, kind: EngineKind, engine: EmbeddingEngine) -> EngineRegistry:
        """The same registry with another engine for ``kind`` (a model switch's old model
        answering queries, then the new one)."""
        return self._derived({**self._all, kind: engine})

    def for_queries(self) -> EngineRegistry:
        """The same engines through their query lanes."""
        return self._derived({k: e.for_queries() for k, e in self._all.items()})

    async def start(self) -> None:
        """Start each engine (one at a time: each loads a model). A required one that
        cannot load raises; an optional one is left out, and why is kept."""
        for kind, engine in self._all.items():
            try:
                await engine.start()
            except EmbeddingError as exc:
                if kind in REQUIRED:
                    raise
                log.warning("the %s engine is off: %s", kind, exc.message)
                self._unavailable[kind] = exc.message
                await engine.stop()

    async def stop(self) -> None:
        await asyncio.gather(*(e.stop() for e in self._all.values()))
