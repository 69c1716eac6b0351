"""Search: embed the query with each engine that reads it, ask the vector store, merge."""

from __future__ import annotations

import asyncio
import html
import itertools
import tempfile
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import cast

from msearch.config import PerformanceSettings
from msearch.embedding.base import EmbeddingEngine, is_multivector
from msearch.embedding.registry import READS, EngineKind, EngineRegistry, QueryKind
from msearch.errors import InvalidRequest, MediaError, MSearchError, NotFound
from msearch.media.audio import stream_windows, wav_bytes
from msearch.media.images import decode_image
from msearch.metrics import SEARCH_SECONDS, timed
from msearch.store.adapter import (
    PAGE,
    PASSAGE_KINDS,
    SPEECH,
    TEXT,
    StoredHit,
    UnifiedDatabaseAdapter,
)
from msearch.store.records import FileStatus, VectorFilter

MAX_QUERY_CHARS = 1000
MAX_LIMIT = 200
_GROUP_WINDOW = 2000
# An uploaded clip is heard for this many windows at most.
MAX_CLIP_WINDOWS = 6
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
    # the kinds of engine asked (``visual``, ``audio``); all that read the query when empty
    modalities: tuple[str, ...] = ()
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


@dataclass
class Found:
    """A page of results, and how many weaker ones the model's relevance floor left out
    (a text query with no ``min_score`` of its own)."""

    hits: list[StoredHit]
    weaker: int = 0


# A query as an engine embeds it: one vector, or a vector per token (a multi-vector model).
QueryVector = list[float] | list[list[float]]


def _split(query: QueryVector) -> tuple[list[float], list[list[float]] | None]:
    """(the vector, None) for a one-vector query; ([], its tokens) for a multi-vector one."""
    if query and isinstance(query[0], list):
        return [], query
    return cast(list[float], query), None


class Searcher:
    """Queries by text, example image or indexed file, asked of every engine that can read
    them (merged by rank when there are several). Uploaded images are decoded on a small
    pool of the searcher's own (bounded memory, and never queued behind indexing)."""

    def __init__(
        self,
        adapter: UnifiedDatabaseAdapter,
        engines: EngineRegistry,
        settings: PerformanceSettings,
        *,
        window_s: float = 10.0,
        page_candidates: int = 200,
    ) -> None:
        self._adapter = adapter
        self._window_s = window_s  # an uploaded clip is heard in windows of this length
        # a multi-vector model ranks by MaxSim this many pages nearest its query's mean
        self._page_candidates = page_candidates
        self._engines = engines.for_queries()
        self._settings = settings
        self._decoder = ThreadPoolExecutor(
            settings.query_workers, thread_name_prefix="msearch-query"
        )
        self._decodes = asyncio.Semaphore(settings.query_workers)
        # Text queries come back (the next page, a popular search): their vectors are kept.
        self._text_vectors: OrderedDict[tuple[EngineKind, str], QueryVector] = OrderedDict()

    def close(self) -> None:
        self._decoder.shutdown(wait=False, cancel_futures=True)

    def use_engine(self, kind: EngineKind, engine: EmbeddingEngine) -> None:
        """Answer ``kind``'s queries with ``engine`` from now on (a model switch); queries
        under way finish with the engine and collection they began with."""
        self._engines = self._engines.replaced(kind, engine.for_queries())
        self._text_vectors = OrderedDict(
            (k, v) for k, v in self._text_vectors.items() if k[0] != kind
        )

    def _engines_for(
        self, query: QueryKind, options: SearchOptions
    ) -> tuple[list[tuple[EngineKind, EmbeddingEngine]], dict[EngineKind, str]]:
        """The engines a query goes to (of the modalities asked for), and the collection
        each searches: taken together, so that a model switch meanwhile cannot pair one
        model's vector with another's collection."""
        engines = [
            (kind, engine)
            for kind, engine in self._engines.reading(query)
            if not options.modalities or kind in options.modalities
        ]
        if not engines:
            raise self._nothing_reads(query, options)
        return engines, {kind: self._adapter.serving_collection(kind) for kind, _ in engines}

    def _nothing_reads(self, query: QueryKind, options: SearchOptions) -> MSearchError:
        """Why no engine takes this query: the one that would is off, or none would."""
        off = self._engines.unavailable
        reasons = [
            f"{kind} search is off ({reason})"
            for kind, reason in off.items()
            if query in READS[kind] and (not options.modalities or kind in options.modalities)
        ]
        if reasons:  # the server cannot do it: no use trying again
            return InvalidRequest("; ".join(reasons), code="engine_off")
        asked = ", ".join(options.modalities) or "any"
        return InvalidRequest(f"no engine of modality {asked} reads {query} queries")

    async def _ask(
        self,
        vectors: Mapping[EngineKind, QueryVector],
        options: SearchOptions,
        collections: dict[EngineKind, str],
        *,
        words: str | None = None,
        floors: dict[EngineKind, float] | None = None,
    ) -> Found:
        """One engine: its own ranking. Several: each is asked for the same top
        ``FUSION_DEPTH`` (deeper when the page is), the lists are fused by rank, then
        paged; a fixed depth keeps pages consistent, as a fusion of shorter lists differs.
        ``words``: a text query, also looked for in what is said in files; a ranking of
        its own, fused with the engines' only when it found something. ``floors``: per
        engine, the score under which its hits are left out (counted as weaker)."""
        _check_page(options)
        floors = floors or {}
        top = replace(options, offset=0, limit=max(FUSION_DEPTH, options.offset + options.limit))
        worded = await self._worded(words, top) if words is not None else []
        if len(vectors) == 1 and not worded:
            [(kind, vector)] = vectors.items()
            hits, weaker = _above(
                await self._search(kind, vector, options, collections[kind]), floors.get(kind)
            )
            return Found(await self._with_page_text(hits), weaker)
        lists = await asyncio.gather(
            *(self._search(k, v, top, collections[k]) for k, v in vectors.items())
        )
        kept = [_above(hits, floors.get(kind)) for kind, hits in zip(vectors, lists, strict=True)]
        fused = fuse_by_rank(
            [*(hits for hits, _ in kept), *([worded] if worded else [])],
            by_file=options.group_by_file,
        )
        page = fused[options.offset : options.offset + options.limit]
        # what the floor left out of the engines' lists, up to a page of it
        weaker = min(sum(cut for _, cut in kept), options.limit)
        return Found(await self._with_page_text(page), weaker)

    async def _with_page_text(self, hits: list[StoredHit]) -> list[StoredHit]:
        """A page found by its looks shows how its text begins (when it has any)."""
        wanted = [
            (h.file.id, h.page)
            for hit in hits
            for h in (hit, *hit.more)
            if h.page is not None and h.marked is None
        ]
        if wanted:
            openings = await self._adapter.page_openings(wanted)
            for hit in hits:
                for h in (hit, *hit.more):
                    if h.page is not None and h.marked is None:
                        text = openings.get((h.file.id, h.page))
                        h.marked = html.escape(text) if text else None
        return hits

    async def _worded(self, words: str, options: SearchOptions) -> list[StoredHit]:
        """Files in which the query's words are said or written (a document's pages), the
        best passages first (one hit per file, its other passages attached, when results
        are grouped per file)."""
        kinds = [
            passages
            for modality, passages in PASSAGE_KINDS.items()
            if not options.modalities or modality in options.modalities
        ]
        found = await self._adapter.search_passages(
            words, limit=options.limit, filter=options.vector_filter(), kinds=kinds
        )
        records = await self._adapter.get_files({h.file_id for h in found})
        hits: list[StoredHit] = []
        by_file: dict[str, StoredHit] = {}
        for found_hit in found:
            record = records.get(found_hit.file_id)
            if record is None or (
                options.min_score is not None and found_hit.strength < options.min_score
            ):
                continue
            passage = found_hit.passage
            on_page = passage.kind == PAGE
            hit = StoredHit(
                record,
                found_hit.strength,
                None,
                TEXT if on_page else SPEECH,
                spoken=passage,
                marked=found_hit.marked,
                page=passage.index + 1 if on_page else None,
            )
            best = by_file.get(record.id) if options.group_by_file else None
            if best is None:
                by_file[record.id] = hit
                hits.append(hit)
            else:
                best.more.append(hit)
        return hits

    async def _search(
        self, kind: EngineKind, query: QueryVector, options: SearchOptions, collection: str
    ) -> list[StoredHit]:
        vector, tokens = _split(query)
        if not options.group_by_file:
            return await self._adapter.search(
                vector,
                limit=options.limit,
                offset=options.offset,
                filter=options.vector_filter(),
                min_score=options.min_score,
                kind=kind,
                collection=collection,
                tokens=tokens,
                candidates=self._page_candidates,
            )
        # One result per file (its best scene), the file's other matching scenes attached.
        # Scenes of one video crowd the top, so a deeper window of vectors is grouped.
        window = min(_GROUP_WINDOW, (options.offset + options.limit) * 8)
        hits = await self._adapter.search(
            vector,
            limit=window,
            filter=options.vector_filter(),
            min_score=options.min_score,
            kind=kind,
            collection=collection,
            tokens=tokens,
            candidates=self._page_candidates,
        )
        groups: dict[str, StoredHit] = {}
        for hit in hits:
            best = groups.get(hit.file.id)
            if best is None:
                groups[hit.file.id] = hit
            elif hit.score > 0:  # a scene less similar than unrelated is no match
                best.more.append(hit)
        return list(groups.values())[options.offset : options.offset + options.limit]

    async def by_text(self, query: str, options: SearchOptions) -> Found:
        """Results for what the query's words describe (or are said or written); unless
        the query sets its own ``min_score``, each calibrated model's matches under its
        relevance floor are left out, and counted."""
        query = query.strip()
        if not query:
            raise InvalidRequest("the query is empty")
        if len(query) > MAX_QUERY_CHARS:
            raise InvalidRequest(f"the query is longer than {MAX_QUERY_CHARS} characters")
        _check_page(options)
        with timed(SEARCH_SECONDS, "text"):
            words = not options.modalities or bool(set(PASSAGE_KINDS) & set(options.modalities))
            engines: list[tuple[EngineKind, EmbeddingEngine]] = []
            collections: dict[EngineKind, str] = {}
            if not options.modalities or not set(options.modalities) <= set(PASSAGE_KINDS):
                engines, collections = self._engines_for(QueryKind.TEXT, options)
            vectors = await asyncio.gather(*(self._text_vector(k, e, query) for k, e in engines))
            kinds = [kind for kind, _ in engines]
            floors = {
                kind: floor
                for kind, engine in engines
                if options.min_score is None and (floor := engine.relevance_floor) is not None
            }
            return await self._ask(
                dict(zip(kinds, vectors, strict=True)),
                options,
                collections,
                words=query if words else None,
                floors=floors,
            )

    async def _text_vector(
        self, kind: EngineKind, engine: EmbeddingEngine, query: str
    ) -> QueryVector:
        key = (kind, query)
        vector = self._text_vectors.get(key)
        if vector is None:
            if is_multivector(engine):
                [vector] = await engine.embed_query_tokens([query])
            else:
                [vector] = await engine.embed_texts([query])
            self._text_vectors[key] = vector
            if len(self._text_vectors) > _TEXT_CACHE:
                self._text_vectors.popitem(last=False)
        else:
            self._text_vectors.move_to_end(key)
        return vector

    async def by_image(self, data: bytes, options: SearchOptions) -> list[StoredHit]:
        _check_page(options)
        with timed(SEARCH_SECONDS, "image"):
            return await self._by_image(data, options)

    async def _by_image(self, data: bytes, options: SearchOptions) -> list[StoredHit]:
        engines, collections = self._engines_for(QueryKind.IMAGE, options)
        side = max(e.input_size for _, e in engines)
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
            try:
                vectors = {k: (await e.embed_images([decoded.image]))[0] for k, e in engines}
            finally:
                decoded.image.close()
        return (await self._ask(vectors, options, collections)).hits

    async def by_audio(self, data: bytes, options: SearchOptions) -> list[StoredHit]:
        """Sounds like this clip (any format FFmpeg reads; a long one by its first minute)."""
        _check_page(options)
        with timed(SEARCH_SECONDS, "audio"):
            engines, collections = self._engines_for(QueryKind.AUDIO, options)
            vectors: dict[EngineKind, list[float]] = {}
            for kind, engine in engines:
                rate = engine.sampling_rate
                if rate is None:
                    continue
                async with self._decodes:
                    clips = await asyncio.get_running_loop().run_in_executor(
                        self._decoder, _decode_clip, data, rate, self._window_s
                    )
                    vectors[kind] = _average(await engine.embed_audio(clips))
            return (await self._ask(vectors, options, {k: collections[k] for k in vectors})).hits

    async def by_sound_of_file(
        self, file_id: str, start: float, options: SearchOptions
    ) -> list[StoredHit]:
        """Sounds like what an indexed file lets hear at ``start`` seconds (the window that
        covers it); that window itself is left out."""
        _check_page(options)
        record = await self._adapter.get_file(file_id)
        if record is None:
            raise NotFound(f"no file with id {file_id}")
        if record.status != FileStatus.INDEXED:
            raise InvalidRequest(f"file {file_id} is not indexed (status {record.status})")
        windows = record.sound_windows
        if not windows:
            raise NotFound(f"file {file_id} has no indexed sound")
        index = min(
            range(len(windows)),
            key=lambda i: (not windows[i][0] <= start <= windows[i][1], abs(windows[i][0] - start)),
        )
        engines, collections = self._engines_for(QueryKind.AUDIO, options)
        vectors = {
            kind: vector
            for kind, _ in engines
            if (vector := await self._adapter.file_vector(file_id, kind, collections[kind], index))
            is not None
        }
        if not vectors:
            raise NotFound(f"file {file_id} has no sound vector in the index")
        wider = replace(options, limit=options.limit + 1)
        hits = (await self._ask(vectors, wider, collections)).hits
        itself = windows[index]
        return [h for h in hits if not (h.file.id == file_id and h.heard == itself)][
            : options.limit
        ]

    async def by_file(
        self, file_id: str, options: SearchOptions, *, page: int | None = None
    ) -> list[StoredHit]:
        """More like this indexed file; the file itself is left out of the results. With
        ``page`` (a document's, from 1): more like that page, the document's other pages
        included."""
        _check_page(options)
        with timed(SEARCH_SECONDS, "file"):
            return await self._by_file(file_id, options, page)

    async def _by_file(
        self, file_id: str, options: SearchOptions, page: int | None
    ) -> list[StoredHit]:
        record = await self._adapter.get_file(file_id)
        if record is None:
            raise NotFound(f"no file with id {file_id}")
        if record.status != FileStatus.INDEXED:
            raise InvalidRequest(f"file {file_id} is not indexed (status {record.status})")
        if page is not None:
            return await self._by_page(record.id, page, record.media_type, options)
        # Each engine compares the file as it embedded it (no vector: it has nothing to say).
        collections = {
            k: self._adapter.serving_collection(k)
            for k in self._engines.kinds
            if not options.modalities or k in options.modalities
        }
        vectors = {
            kind: vector
            for kind, collection in collections.items()
            if (vector := await self._adapter.file_vector(file_id, kind, collection)) is not None
        }
        if not vectors:
            raise NotFound(f"file {file_id} has no vector in the index")
        excluded = replace(options, exclude_file_ids=(*options.exclude_file_ids, file_id))
        return (await self._ask(vectors, excluded, collections)).hits

    async def _by_page(
        self, file_id: str, page: int, media_type: str | None, options: SearchOptions
    ) -> list[StoredHit]:
        if media_type != "document":
            raise InvalidRequest(f"file {file_id} is not a document: it has no pages")
        engines, collections = self._engines_for(QueryKind.IMAGE, options)
        vectors = {
            kind: vector
            for kind, _ in engines
            if (
                vector := await self._adapter.file_vector(
                    file_id, kind, collections[kind], page - 1
                )
            )
            is not None
        }
        if not vectors:
            raise NotFound(f"document {file_id} has no indexed page {page}")
        hits = (
            await self._ask(vectors, replace(options, limit=options.limit + 1), collections)
        ).hits
        results = []
        for hit in hits:
            if hit.file.id != file_id:
                results.append(hit)
                continue
            # grouped per file, the page may stand for its document or be among its pages
            pages = [h for h in (hit, *hit.more) if h.page != page]
            if pages:
                pages[0].more = pages[1:]
                results.append(pages[0])
        return results[: options.limit]


def _average(vectors: list[list[float]]) -> list[float]:
    """The direction of several unit vectors together (a clip longer than a window)."""
    total = [sum(values) for values in zip(*vectors, strict=True)]
    norm = sum(v * v for v in total) ** 0.5 or 1.0
    return [v / norm for v in total]


def _decode_clip(data: bytes, rate: int, window_s: float) -> list[bytes]:
    """An uploaded clip as the model's WAV windows (its first minute at most)."""
    with tempfile.NamedTemporaryFile(suffix=".clip") as upload:
        upload.write(data)
        upload.flush()
        windows = stream_windows(
            Path(upload.name), rate=rate, window_s=window_s, hop_s=window_s, timeout_s=60
        )
        try:
            clips = [
                wav_bytes(w.samples, rate) for w in itertools.islice(windows, MAX_CLIP_WINDOWS)
            ]
        except MediaError as exc:
            raise InvalidRequest(
                f"the upload is not sound msearch can read: {exc.message}"
            ) from exc
        finally:
            windows.close()  # the decoder stops once enough is heard
    if not clips:
        raise InvalidRequest("no sound could be decoded from the upload")
    return clips


def _above(hits: list[StoredHit], floor: float | None) -> tuple[list[StoredHit], int]:
    """The hits scored at or above ``floor`` (their other scenes too), and how many were
    not; hits come best first, so what is cut is the tail."""
    if floor is None:
        return hits, 0
    kept = [h for h in hits if h.score >= floor]
    for hit in kept:
        hit.more = [m for m in hit.more if m.score >= floor]
    return kept, len(hits) - len(kept)


def _check_page(options: SearchOptions) -> None:
    if not 1 <= options.limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}")
    if options.offset < 0:
        raise InvalidRequest("offset must not be negative")


# How deep each engine's list goes into a fusion.
FUSION_DEPTH = MAX_LIMIT

# Reciprocal-rank fusion's constant: how much the top of a list outweighs its tail (60 is
# the value of Cormack et al., which works well without tuning).
RRF_K = 60


def fuse_by_rank(lists: Sequence[Sequence[StoredHit]], *, by_file: bool) -> list[StoredHit]:
    """Merge several engines' rankings: scores of different models are not comparable,
    ranks are. A result found by several engines sums 1 / (RRF_K + rank) over them and is
    shown as the engine that ranked it best found it (its own score and kind). Results are
    the same result when they are the same file (``by_file``) or the same scene of it."""
    fused: dict[tuple[str, str, float], float] = {}
    found: dict[tuple[str, str, float], list[tuple[int, StoredHit]]] = {}
    for hits in lists:
        for rank, hit in enumerate(hits):
            key = (hit.file.id, "file", 0.0) if by_file else (hit.file.id, *_segment(hit))
            fused[key] = fused.get(key, 0.0) + 1.0 / (RRF_K + rank + 1)
            found.setdefault(key, []).append((rank, hit))
    order = sorted(fused, key=lambda key: (-fused[key], min(r for r, _ in found[key])))
    results = []
    for key in order:
        ranked = sorted(found[key], key=lambda item: item[0])
        hit = ranked[0][1]
        # a file's hits from the other engines: a video's sound next to its scenes
        for _, other in ranked[1:]:
            if other.page is not None and other.page == hit.page and hit.marked is None:
                hit.spoken, hit.marked = other.spoken, other.marked  # the page's words
            hit.more.extend([other, *other.more])
            other.more = []
        hit.rank_score = round(fused[key], 6)
        results.append(hit)
    return results


def _segment(hit: StoredHit) -> tuple[str, float]:
    """What part of the file a hit is: a window of its sound, words said in it, a scene,
    a page, or the whole."""
    if hit.page is not None:
        return "page", float(hit.page)
    if hit.heard is not None:
        return "sound", hit.heard[0]
    if hit.spoken is not None:
        return "speech", hit.spoken.start
    if hit.scene is not None:
        return "scene", float(hit.scene.index)
    return "file", 0.0
