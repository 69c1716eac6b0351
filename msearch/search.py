"""Search: embed the query with the index's model, ask the vector store, enrich from SQLite."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from msearch.config import PerformanceSettings
from msearch.embedding.base import EmbeddingEngine
from msearch.errors import InvalidRequest, NotFound
from msearch.media.images import decode_image
from msearch.metrics import SEARCH_SECONDS, timed
from msearch.store.adapter import StoredHit, UnifiedDatabaseAdapter
from msearch.store.records import FileStatus, VectorFilter

MAX_QUERY_CHARS = 1000
MAX_LIMIT = 200
_GROUP_WINDOW = 2000
_TEXT_CACHE = 1024


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_seconds(moment: datetime) -> float:
    """Seconds since 1970 for any datetime (year 1 included, where ``timestamp()``
    overflows); a time without a zone is UTC, like the EXIF times msearch records."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (aware - _EPOCH).total_seconds()


@dataclass(frozen=True)
class SearchOptions:
    limit: int = 20
    offset: int = 0
    media_types: tuple[str, ...] = ()
    folder: str | None = None
    min_score: float | None = None
    taken_after: datetime | None = None
    taken_before: datetime | None = None
    exclude_file_ids: tuple[str, ...] = field(default=())
    group_by_file: bool = False

    def vector_filter(self) -> VectorFilter:
        return VectorFilter(
            media_types=self.media_types,
            folder=self.folder.rstrip("/") or "/" if self.folder else None,
            taken_after=epoch_seconds(self.taken_after) if self.taken_after else None,
            taken_before=epoch_seconds(self.taken_before) if self.taken_before else None,
            exclude_file_ids=self.exclude_file_ids,
        )


class Searcher:
    """Queries by text, example image or indexed file. Uploaded images are decoded on a
    small pool of the searcher's own (bounded memory, and never queued behind indexing)."""

    def __init__(
        self,
        adapter: UnifiedDatabaseAdapter,
        engine: EmbeddingEngine,
        settings: PerformanceSettings,
    ) -> None:
        self._adapter = adapter
        self._engine = engine.for_queries()
        self._settings = settings
        self._decoder = ThreadPoolExecutor(
            settings.query_workers, thread_name_prefix="msearch-query"
        )
        self._decodes = asyncio.Semaphore(settings.query_workers)
        # Text queries come back (the next page, a popular search): their vectors are kept.
        self._text_vectors: OrderedDict[str, list[float]] = OrderedDict()

    def close(self) -> None:
        self._decoder.shutdown(wait=False, cancel_futures=True)

    async def _search(self, vector: list[float], options: SearchOptions) -> list[StoredHit]:
        if not 1 <= options.limit <= MAX_LIMIT:
            raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}")
        if options.offset < 0:
            raise InvalidRequest("offset must not be negative")
        if not options.group_by_file:
            return await self._adapter.search(
                vector,
                limit=options.limit,
                offset=options.offset,
                filter=options.vector_filter(),
                min_score=options.min_score,
            )
        # One result per file (its best scene), the file's other matching scenes attached.
        # Scenes of one video crowd the top, so a deeper window of vectors is grouped.
        window = min(_GROUP_WINDOW, (options.offset + options.limit) * 8)
        hits = await self._adapter.search(
            vector, limit=window, filter=options.vector_filter(), min_score=options.min_score
        )
        groups: dict[str, StoredHit] = {}
        for hit in hits:
            best = groups.get(hit.file.id)
            if best is None:
                groups[hit.file.id] = hit
            elif hit.score > 0:  # a scene less similar than unrelated is no match
                best.more.append(hit)
        return list(groups.values())[options.offset : options.offset + options.limit]

    async def by_text(self, query: str, options: SearchOptions) -> list[StoredHit]:
        query = query.strip()
        if not query:
            raise InvalidRequest("the query is empty")
        if len(query) > MAX_QUERY_CHARS:
            raise InvalidRequest(f"the query is longer than {MAX_QUERY_CHARS} characters")
        with timed(SEARCH_SECONDS, "text"):
            return await self._search(await self._text_vector(query), options)

    async def _text_vector(self, query: str) -> list[float]:
        vector = self._text_vectors.get(query)
        if vector is None:
            [vector] = await self._engine.embed_texts([query])
            self._text_vectors[query] = vector
            if len(self._text_vectors) > _TEXT_CACHE:
                self._text_vectors.popitem(last=False)
        else:
            self._text_vectors.move_to_end(query)
        return vector

    async def by_image(self, data: bytes, options: SearchOptions) -> list[StoredHit]:
        with timed(SEARCH_SECONDS, "image"):
            return await self._by_image(data, options)

    async def _by_image(self, data: bytes, options: SearchOptions) -> list[StoredHit]:
        side = self._engine.input_size
        async with self._decodes:  # what waits here is the upload's bytes, not its pixels
            decoded = await asyncio.get_running_loop().run_in_executor(
                self._decoder,
                partial(
                    decode_image,
                    data,
                    max_pixels=self._settings.max_query_pixels,
                    min_short=side,
                    min_long=side,
                ),
            )
            [vector] = await self._engine.embed_images([decoded.image])
            decoded.image.close()
        return await self._search(vector, options)

    async def by_file(self, file_id: str, options: SearchOptions) -> list[StoredHit]:
        """More like this indexed file; the file itself is left out of the results."""
        with timed(SEARCH_SECONDS, "file"):
            return await self._by_file(file_id, options)

    async def _by_file(self, file_id: str, options: SearchOptions) -> list[StoredHit]:
        record = await self._adapter.get_file(file_id)
        if record is None:
            raise NotFound(f"no file with id {file_id}")
        if record.status != FileStatus.INDEXED:
            raise InvalidRequest(f"file {file_id} is not indexed (status {record.status})")
        vector = await self._adapter.file_vector(file_id)
        if vector is None:
            raise NotFound(f"file {file_id} has no vector in the index")
        excluded = SearchOptions(
            **{**options.__dict__, "exclude_file_ids": (*options.exclude_file_ids, file_id)}
        )
        return await self._search(vector, excluded)
