"""UnifiedDatabaseAdapter: the only door to persistence; keeps SQLite and Qdrant consistent.

Write order: metadata row (processing) -> vectors (idempotent upsert) -> metadata (indexed).
Delete order: mark deleted -> delete vectors -> delete row. A crash between any two steps
leaves a state that ``reconcile`` repairs: unfinished files are re-queued, vectors without
an indexed file are removed, files marked deleted are finished off.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from msearch.errors import ModelUnavailable, StoreError
from msearch.store.cache import MediaCache
from msearch.store.metadata import NEXT, MetadataStore
from msearch.store.records import (
    UNFINISHED,
    FileRecord,
    FileStatus,
    FolderRecord,
    JobRecord,
    Passage,
    PassageHit,
    SceneRecord,
    VectorFilter,
    VectorHit,
    VectorPoint,
)
from msearch.store.vectors import VectorStore, ancestor_dirs, point_id, pooled

log = logging.getLogger(__name__)

# The engine kind every indexed file has vectors from (see embedding/registry.py); the
# store names kinds by their string so that it needs nothing from the layers above.
VISUAL = "visual"
# The kinds whose vectors are windows of a file's sound (``FileRecord.sound_windows``).
SOUND_KINDS = frozenset({"audio"})
# Words said in a file: passages in SQLite's full-text index, not vectors.
SPEECH = "speech"
# Words read in a file (a document's pages): passages too, of this kind; hits on them are
# of the kind TEXT.
PAGE = "page"
TEXT = "text"
# Which passages each kind of words search reads.
PASSAGE_KINDS = {SPEECH: SPEECH, TEXT: PAGE}


@dataclass
class StoredHit:
    # The file as its vector's payload describes it (id, path, folder, media type), an
    # indexed file: search reads no more of its row.
    file: FileRecord
    score: float
    scene: SceneRecord | None
    kind: str = VISUAL  # the engine that found it; its score is that model's own
    # A hit on a window of sound: where it is heard, in seconds.
    heard: tuple[float, float] | None = None
    # A hit on words said in the file: the passage, and its text with the match marked.
    spoken: Passage | None = None
    marked: str | None = None
    # A hit on a document's page (its looks, or its words in ``spoken``): counted from 1.
    page: int | None = None
    # When several engines were asked: the fused rank score the results are ordered by.
    rank_score: float | None = None
    # With results grouped per file: the file's other matching scenes, best first.
    more: list[StoredHit] = field(default_factory=list)


def _taken_within(record: FileRecord | None, restrict: VectorFilter) -> bool:
    taken = _taken_epoch(record.taken_at) if record else None
    if taken is None:
        return False
    after, before = restrict.taken_after, restrict.taken_before
    return (after is None or taken >= after) and (before is None or taken <= before)


def _taken_epoch(taken_at: str | None) -> float | None:
    if not taken_at:
        return None
    try:
        return datetime.fromisoformat(taken_at).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class ModelSwitch:
    """A kind's index being rebuilt by another model; search keeps the old one meanwhile."""

    kind: str
    old_model: str | None  # None: the kind is new to this index
    new_model: str
    old_source: str | None  # where the old model loads from, to answer queries meanwhile


class UnifiedDatabaseAdapter:
    """Metadata in SQLite, vectors in Qdrant, one collection per embedding model."""

    def __init__(
        self,
        metadata: MetadataStore,
        vectors: VectorStore,
        cache_dir: Path,
        *,
        journal: Path | None = None,
    ) -> None:
        self._metadata = metadata
        self._vectors = vectors
        self._cache = MediaCache(cache_dir)
        self._journal = journal or cache_dir.parent / "reset.pending"
        # per engine kind: the collection written, the model behind it, and the collection
        # searched (the same but during a model switch, when search keeps the old one)
        self._collections: dict[str, str] = {}
        self._model_ids: dict[str, str] = {}
        self._serving: dict[str, str] = {}
        self._switches: dict[str, ModelSwitch] = {}

    async def open(self) -> None:
        await self._metadata.open()

    async def close(self) -> None:
        try:
            await self._vectors.close()
        finally:
            await self._metadata.close()

    @property
    def collection(self) -> str:
        """The visual engine's collection (the one every file has vectors in)."""
        return self.collection_of(VISUAL)

    def collection_of(self, kind: str) -> str:
        """The collection a kind's vectors are written to."""
        collection = self._collections.get(kind)
        if collection is None:
            raise ModelUnavailable(f"no {kind} embedding model is active")
        return collection

    def serving_collection(self, kind: str) -> str:
        """The collection a kind's searches read: the written one, or during a model
        switch the old model's, complete until the new one is."""
        return self._serving.get(kind) or self.collection_of(kind)

    @property
    def kinds(self) -> list[str]:
        return list(self._collections)

    @property
    def switches(self) -> list[ModelSwitch]:
        """The model switches under way."""
        return list(self._switches.values())

    @property
    def model_id(self) -> str | None:
        """What a file indexed now was embedded with: the model of each active engine.
        A file indexed with anything else is embedded again."""
        return self.model_key(self._model_ids)

    def model_key(self, kinds: Iterable[str]) -> str | None:
        """What a file embedded by these kinds of engine records as its model: an image
        keeps its key when a sound model comes or goes, a video does not."""
        active = sorted(k for k in set(kinds) if k in self._model_ids)
        return "+".join(self._model_ids[k] for k in active) or None

    async def activate_model(
        self,
        model_id: str,
        collection: str,
        dim: int,
        *,
        kind: str = VISUAL,
        source: str | None = None,
        media_types: Iterable[str] | None = None,
        multivector: bool = False,
    ) -> ModelSwitch | None:
        """Make ``collection`` the one written for this kind of engine (``source``: where
        its model loads from). When the kind's index was built by another model, a switch
        starts (or resumes, after a crash): every file is re-queued and embedded into the
        new collection while searches keep reading the old one, complete, until
        ``finish_switches`` swaps them. Two models' vectors are never mixed in one
        collection. ``media_types``: the files the kind embeds (all when None), the only
        ones a switch re-queues. ``multivector``: the model gives a vector per token
        (``commit_indexed``'s ``tokens``, found with ``search``'s token queries). Returns
        the switch under way, if any."""
        await self._vectors.ensure_collection(collection, dim, multivector=multivector)
        current = (await self._metadata.get_models()).get(kind)
        pending = (await self._metadata.get_models(next_ones=True)).get(kind)
        self._collections[kind], self._model_ids[kind] = collection, model_id
        self._serving[kind] = collection
        self._switches.pop(kind, None)
        switch: ModelSwitch | None = None
        changed = current is None or current[2] != collection
        if changed and await self._metadata.file_ids():
            # another model, or a kind of engine new to this index: every file goes through
            # it, while the other kinds' collections keep answering as they are
            if pending is None or pending[2] != collection:
                log.warning(
                    "%s embedding model is now %s (was %s): re-indexing every file into a "
                    "new collection; search keeps using what there is until that is done",
                    kind,
                    model_id,
                    current[0] if current else "none",
                )
                await self._metadata.requeue_all(media_types)
            await self._metadata.set_model(model_id, dim, collection, kind + NEXT, source)
            if current is not None:
                self._serving[kind] = current[2]
            switch = ModelSwitch(
                kind,
                current[0] if current else None,
                model_id,
                await self._metadata.model_source(kind) if current else None,
            )
            self._switches[kind] = switch
        else:
            if pending is not None:
                # back to the model in use before the switch ended: files it re-embedded
                # are embedded again with this one
                log.warning("%s model switch to %s abandoned", kind, pending[0])
                await self._metadata.delete_model(kind + NEXT)
                await self._metadata.requeue_unless_model(self.model_id or "")
            await self._metadata.set_model(model_id, dim, collection, kind, source)
        # Collections no model claims any more (a replaced model's) are dropped.
        claimed = await self._claimed_collections()
        for name in await self._vectors.list_collections():
            if name not in claimed:
                await self._vectors.drop_collection(name)
        return switch

    async def _claimed_collections(self) -> set[str]:
        models = [
            *(await self._metadata.get_models()).values(),
            *(await self._metadata.get_models(next_ones=True)).values(),
        ]
        return {collection for _, _, collection in models}

    def serve_written(self, kind: str) -> None:
        """Search the collection being written (a switch whose old model cannot answer)."""
        self._serving[kind] = self.collection_of(kind)

    async def finish_switches(self, swap: Callable[[str], None] | None = None) -> list[str]:
        """Once no file waits to be embedded, each switch ends at once: the new collection
        becomes the one searched (``swap`` hears of it in the same step, to change the query
        engine with it), the new model is recorded, and the old collection is dropped.
        Returns the kinds switched."""
        if not self._switches:
            return []
        counts = await self._metadata.status_counts()
        if any(counts.get(status, 0) for status in UNFINISHED):
            return []
        done: list[str] = []
        for kind in list(self._switches):
            pending = (await self._metadata.get_models(next_ones=True)).get(kind)
            if pending is None:
                continue
            model_id, dim, collection = pending
            source = await self._metadata.model_source(kind + NEXT)
            await self._metadata.set_model(model_id, dim, collection, kind, source)
            await self._metadata.delete_model(kind + NEXT)
            old = self._serving[kind]
            self._serving[kind] = collection
            del self._switches[kind]
            if swap is not None:
                swap(kind)
            log.info("%s model switch to %s done", kind, model_id)
            if old != collection:
                await self._vectors.drop_collection(old)
            done.append(kind)
        return done

    async def use_stored_model(self) -> tuple[str, int] | None:
        """Point at the collections of the models that built the index, without loading
        them (for maintenance commands). Returns the visual model's (id, dim), or None
        when no model built it yet."""
        stored = await self._metadata.get_models()
        for kind, (model_id, _, collection) in stored.items():
            self._collections[kind], self._model_ids[kind] = collection, model_id
            self._serving[kind] = collection
        visual = stored.get(VISUAL)
        return (visual[0], visual[1]) if visual else None

    def _sound_collections(self) -> set[str]:
        """The collections whose points are windows of sound rather than pictures."""
        return {
            c
            for kind in SOUND_KINDS
            for c in (self._collections.get(kind), self._serving.get(kind))
            if c is not None
        }

    def _all_collections(self) -> list[str]:
        return list(dict.fromkeys([*self._collections.values(), *self._serving.values()]))

    async def _delete_vectors(self, file_ids: list[str]) -> None:
        for collection in self._all_collections():
            await self._vectors.delete_files(collection, file_ids)

    # files -----------------------------------------------------------------------------

    async def get_file(self, file_id: str) -> FileRecord | None:
        return await self._metadata.get_file(file_id)

    async def get_files_by_path(self, paths: list[str]) -> dict[str, FileRecord]:
        return await self._metadata.get_files_by_path(paths)

    async def save_file(self, record: FileRecord) -> None:
        await self._metadata.save_file(record)

    async def save_files(self, records: list[FileRecord]) -> None:
        await self._metadata.save_files(records)

    async def set_status(
        self, file_id: str, status: FileStatus, *, progress: float | None = None
    ) -> None:
        await self._metadata.set_status(file_id, status, progress=progress)

    async def set_progress(self, file_id: str, progress: float) -> None:
        await self._metadata.set_progress(file_id, progress)

    async def list_files(self, **filters: Any) -> tuple[list[FileRecord], int]:
        return await self._metadata.list_files(**filters)

    def _window_payload(
        self, record: FileRecord, index: int, window: tuple[float, float]
    ) -> dict[str, Any]:
        payload = self._payload(record, None)
        # the recording's length, so that a hit can show where in it the window is
        payload.update(window=index, start=window[0], end=window[1], duration=record.duration)
        return payload

    def _payload(self, record: FileRecord, scene: SceneRecord | None) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "file_id": record.id,
            "media_type": record.media_type,
            "path": record.path,
            "folder": record.folder,
            "dirs": ancestor_dirs(record.folder),
            "scene_index": scene.index if scene else 0,
        }
        taken = _taken_epoch(record.taken_at)
        if taken is not None:
            payload["taken_at"] = taken
        if scene is not None and record.media_type == "document":
            payload["page"] = scene.index + 1
        elif scene is not None:
            payload.update(start=scene.start, end=scene.end, keyframe=scene.keyframe)
        return payload

    async def commit_indexed(
        self,
        record: FileRecord,
        vectors: Mapping[str, list[list[float]]],
        scenes: list[SceneRecord],
        *,
        windows: Mapping[str, list[tuple[float, float]]] | None = None,
        previous: FileRecord | None = None,
        model: str | None = None,
        passages: Sequence[Passage] = (),
        tokens: Mapping[str, list[npt.NDArray[np.float32]]] | None = None,
    ) -> None:
        """Store a processed file: vectors first (idempotent ids), then the metadata that
        says ``indexed``. ``vectors`` holds each engine kind's: one per scene (``scenes``;
        one vector for an image), or for the kinds in ``windows`` one per window of sound
        (start, end); ``tokens`` a multi-vector kind's, one per page. ``previous`` (the
        file's last record: how many points it had) is looked up when not given;
        ``model`` is what the record says embedded it; ``passages`` (what is said in it)
        replace the file's old ones."""
        windows = windows or {}
        tokens = tokens or {}
        for kind, pages in tokens.items():
            if len(pages) != len(scenes):
                raise ValueError(f"one {kind} multi-vector per page is required")
        for kind, embedded in vectors.items():
            expected = len(windows[kind]) if kind in windows else len(scenes)
            if (kind in windows or scenes) and len(embedded) != expected:
                raise ValueError(f"one {kind} vector per scene or window is required")
        if previous is None:
            previous = await self._metadata.get_file(record.id)
        before = max(1, len(previous.scenes)) if previous else 1
        before_windows = len(previous.sound_windows) if previous else 0
        for kind, collection in self._collections.items():
            embedded = vectors.get(kind, [])
            spans = windows.get(kind)
            points = [
                VectorPoint(
                    point_id(record.id, i),
                    vector,
                    self._window_payload(record, i, spans[i])
                    if spans is not None
                    else self._payload(record, scenes[i] if scenes else None),
                )
                for i, vector in enumerate(embedded)
            ]
            points += [
                VectorPoint(
                    point_id(record.id, i),
                    pooled(page),
                    self._payload(record, scenes[i]),
                    tokens=page,
                )
                for i, page in enumerate(tokens.get(kind, []))
            ]
            if points:
                await self._vectors.upsert(collection, points)
            # A re-processed video may have fewer scenes or windows now, or a kind nothing
            # to say of the file any more: its ids beyond the new ones are stale.
            had = max(before, before_windows)
            stale = [point_id(record.id, i) for i in range(len(points), had)]
            if stale:
                await self._vectors.delete_points(collection, stale)
        record.model = model or self.model_id
        await self._metadata.mark_indexed(record, scenes, passages)

    async def passages_of(self, file_id: str, kind: str) -> list[Passage]:
        return await self._metadata.passages_of(file_id, kind)

    async def search_passages(
        self,
        query: str,
        *,
        limit: int,
        filter: VectorFilter | None = None,
        kinds: Sequence[str] = (),
    ) -> list[PassageHit]:
        """Passages (of ``kinds``, or any) of indexed files matching ``query``'s words, with
        ``filter``'s restrictions (capture dates: files without one are left out, as in
        vector search)."""
        if not self._metadata.has_passages:
            return []
        restrict = filter or VectorFilter()
        dated = restrict.taken_after is not None or restrict.taken_before is not None
        hits = await self._metadata.search_passages(
            query,
            limit=limit * 4 if dated else limit,
            media_types=restrict.media_types,
            folder=restrict.folder,
            exclude_file_ids=restrict.exclude_file_ids,
            kinds=kinds,
        )
        if dated:
            records = await self._metadata.get_files({h.file_id for h in hits})
            hits = [h for h in hits if _taken_within(records.get(h.file_id), restrict)]
        return hits[:limit]

    async def page_openings(self, pages: Iterable[tuple[str, int]]) -> dict[tuple[str, int], str]:
        """How pages begin: (file id, page number from 1) -> the start of its text."""
        return await self._metadata.page_openings(pages)

    async def import_indexed(self, records: list[FileRecord], vectors: list[list[float]]) -> None:
        """Bulk-load already embedded images (benchmarks, migrations): same write order as
        ``commit_indexed`` (rows, vectors, then ``indexed``), in large batches."""
        for record in records:
            record.status, record.model = FileStatus.PROCESSING, self.model_id
        await self._metadata.save_files(records)
        await self._vectors.upsert(
            self.collection,
            [
                VectorPoint(point_id(r.id, 0), v, self._payload(r, None))
                for r, v in zip(records, vectors, strict=True)
            ],
        )
        for record in records:
            record.status, record.progress = FileStatus.INDEXED, 1.0
        await self._metadata.save_files(records)

    # The file-status lifecycle, all of it here: queued -> processing -> indexed | failed |
    # skipped; queued again after a transient failure (mark_retrying) or when a change,
    # a retry or a model switch asks for it; deleted on the way out (delete_file).

    async def mark_queued(self, records: list[FileRecord]) -> None:
        for record in records:
            record.status, record.progress = FileStatus.QUEUED, 0.0
        await self._metadata.save_files(records)

    async def mark_processing(self, record: FileRecord) -> None:
        await self._metadata.set_status(record.id, FileStatus.PROCESSING, progress=0.0)
        record.status, record.progress = FileStatus.PROCESSING, 0.0

    async def keep_indexed(self, record: FileRecord, *, size: int, mtime: float) -> None:
        """An unchanged file keeps its vectors; only its size and mtime are refreshed."""
        record.size, record.mtime = size, mtime
        record.status, record.progress = FileStatus.INDEXED, 1.0
        await self._metadata.save_file(record)

    async def mark_failed(self, record: FileRecord, code: str, message: str) -> None:
        """A file that cannot be indexed keeps no vectors: stale ones would find old
        content. What was learnt of it (size, mtime, type) is kept, so an unchanged bad
        file is not retried at every scan."""
        await self._delete_vectors([record.id])
        record.status, record.error_code, record.error = FileStatus.FAILED, code, message
        record.progress = 0.0
        await self._metadata.save_file(record)

    async def mark_skipped(self, record: FileRecord, code: str, message: str) -> None:
        """Not media msearch indexes (the reason says which); like a failure it keeps no
        vectors, and it is looked at again only when it changes."""
        await self._delete_vectors([record.id])
        record.status, record.error_code, record.error = FileStatus.SKIPPED, code, message
        record.progress = 0.0
        await self._metadata.save_file(record)

    async def mark_retrying(self, record: FileRecord, code: str, message: str) -> None:
        """Queued again after a transient failure; what went wrong stays visible."""
        record.status, record.error_code, record.error = FileStatus.QUEUED, code, message
        record.progress = 0.0
        await self._metadata.save_file(record)

    async def delete_file(self, file_id: str) -> bool:
        record = await self._metadata.get_file(file_id)
        if record is None:
            return False
        await self._metadata.set_status(file_id, FileStatus.DELETED)
        await self._delete_vectors([file_id])
        await self._metadata.delete_files([file_id])
        await self._cache.remove_file(file_id)
        return True

    async def relocate_file(self, record: FileRecord, new_path: str) -> FileRecord:
        """A moved or renamed file keeps its id and vectors: its points are re-written
        with the new location in their payload (vectors copied, not recomputed), then the
        row. A crash in between leaves the old row, which the next scan relocates again."""
        windows = record.sound_windows
        count = max(1, len(record.scenes))
        ids = [point_id(record.id, i) for i in range(max(count, len(windows)))]
        found = {c: await self._vectors.retrieve_vectors(c, ids) for c in self._all_collections()}
        visual = {self._collections.get(VISUAL), self._serving.get(VISUAL)}
        if record.media_type != "audio" and not any(
            len(found[c]) == count for c in visual if c is not None
        ):
            have = max((len(found[c]) for c in visual if c is not None), default=0)
            raise StoreError(
                f"{record.path} has {have} of its {count} vectors; it must be re-indexed"
            )
        record.path, record.folder = new_path, str(Path(new_path).parent)
        scenes = sorted(record.scenes, key=lambda s: s.index)
        hearing = self._sound_collections()
        for collection, vectors in found.items():
            points = [
                VectorPoint(
                    pid,
                    vectors[pid],
                    self._window_payload(record, i, windows[i])
                    if collection in hearing
                    else self._payload(record, scenes[i] if scenes else None),
                )
                for i, pid in enumerate(ids)
                if pid in vectors and (i < len(windows) if collection in hearing else i < count)
            ]
            if points:
                await self._vectors.upsert(collection, points)
        await self._metadata.save_file(record)
        return record

    def thumbnail_path(self, file_id: str, scene_index: int | None = None) -> Path:
        return self._cache.thumbnail_path(file_id, scene_index)

    def enhanced_path(self, file_id: str, scene_index: int | None = None) -> Path:
        """Where the enhanced copy of an image (or of a video's keyframe) is kept."""
        return self._cache.enhanced_path(file_id, scene_index)

    # jobs ------------------------------------------------------------------------------

    async def create_job(self, job: JobRecord, file_ids: list[str]) -> None:
        await self._metadata.create_job(job, file_ids)

    async def record_job_progress(self, job_id: str, *, failed: bool) -> None:
        await self._metadata.record_job_progress(job_id, failed=failed)

    async def get_job(self, job_id: str) -> JobRecord | None:
        return await self._metadata.get_job(job_id)

    async def job_file_counts(self, job_id: str) -> dict[str, int]:
        return await self._metadata.job_file_counts(job_id)

    async def job_files(self, job_id: str, status: str, limit: int) -> list[FileRecord]:
        return await self._metadata.job_files(job_id, status, limit)

    async def job_unchanged(self, job_id: str, since: float) -> int:
        return await self._metadata.job_unchanged(job_id, since)

    # folders and listings: what the watcher, the CLI and the API ask of the metadata ------

    async def list_folders(self) -> list[FolderRecord]:
        return await self._metadata.list_folders()

    async def add_folder(self, path: str, recursive: bool) -> FolderRecord:
        return await self._metadata.add_folder(path, recursive)

    async def remove_folder(self, folder_id: int) -> bool:
        return await self._metadata.remove_folder(folder_id)

    async def get_folder(self, folder_id: int) -> FolderRecord | None:
        return await self._metadata.get_folder(folder_id)

    async def folder_at(self, path: str) -> FolderRecord | None:
        return await self._metadata.folder_at(path)

    async def files_in(self, folder: FolderRecord) -> list[FileRecord]:
        """The files a watched folder covers."""
        return await self._metadata.files_in(folder)

    async def files_below(self, path: str) -> list[FileRecord]:
        return await self._metadata.files_below(path)

    async def files_with_size(self, sizes: Iterable[int]) -> list[FileRecord]:
        return await self._metadata.files_with_size(sizes)

    async def files_with_status(self, statuses: Sequence[FileStatus]) -> list[FileRecord]:
        return await self._metadata.files_with_status(statuses)

    async def get_files(self, file_ids: Iterable[str]) -> dict[str, FileRecord]:
        return await self._metadata.get_files(file_ids)

    async def status_counts(self, folder: FolderRecord | None = None) -> dict[str, int]:
        return await self._metadata.status_counts(folder)

    async def skipped_reasons(self, job_id: str | None = None) -> dict[str, int]:
        return await self._metadata.skipped_reasons(job_id)

    async def status_type_counts(self) -> dict[tuple[str, str], int]:
        return await self._metadata.status_type_counts()

    async def stored_models(self) -> dict[str, tuple[str, int, str]]:
        """The model that built each kind's vectors: kind -> (id, dim, collection)."""
        return await self._metadata.get_models()

    # search ----------------------------------------------------------------------------

    async def search(
        self,
        vector: list[float],
        *,
        limit: int,
        offset: int = 0,
        filter: VectorFilter | None = None,
        min_score: float | None = None,
        kind: str = VISUAL,
        collection: str | None = None,
        tokens: list[list[float]] | None = None,
        candidates: int = 200,
    ) -> list[StoredHit]:
        """``collection``: the one the query vector was made for (``serving_collection``
        when the query began), so that a switch meanwhile cannot mix two models.
        ``tokens``: a multi-vector model's query (``vector`` is then unused), matched by
        MaxSim among the ``candidates`` pages nearest its mean."""
        name = collection or self.serving_collection(kind)
        if tokens is not None:
            hits = await self._vectors.search_tokens(
                name, tokens, limit=limit, offset=offset, filter=filter, candidates=candidates
            )
            # the mean of each query token's best match: a cosine's scale, whatever the
            # query's length, so that min_score means what it does for one vector
            hits = [VectorHit(h.id, h.score / len(tokens), h.payload) for h in hits]
            if min_score is not None:
                hits = [h for h in hits if h.score >= min_score]
        else:
            hits = await self._vectors.search(
                name,
                vector,
                limit=limit,
                offset=offset,
                filter=filter,
                score_threshold=min_score,
            )
        # What a result shows travels in the payload; SQLite only says which files are
        # indexed now (not being deleted or re-indexed), in one small query.
        # During a switch every file waits to be embedded again; the collections being
        # searched still describe them.
        statuses = ("indexed", *UNFINISHED) if self._switches else ("indexed",)
        indexed = await self._metadata.indexed_among(
            list(dict.fromkeys(str(h.payload.get("file_id", "")) for h in hits)),
            statuses=statuses,
        )
        results: list[StoredHit] = []
        for hit in hits:
            payload = hit.payload
            file_id = str(payload.get("file_id", ""))
            if file_id not in indexed:
                continue
            record = FileRecord(
                id=file_id,
                path=str(payload.get("path", "")),
                folder=str(payload.get("folder", "")),
                media_type=payload.get("media_type"),
                status=FileStatus.INDEXED,
            )
            scene, heard, page = None, None, None
            if "page" in payload:
                page = int(payload["page"])
            elif "window" in payload:
                heard = (float(payload["start"]), float(payload["end"]))
                record.duration = payload.get("duration")
            elif record.media_type == "video" and "start" in payload:
                scene = SceneRecord(
                    int(payload.get("scene_index", 0)),
                    float(payload["start"]),
                    float(payload["end"]),
                    float(payload["keyframe"]),
                )
            results.append(StoredHit(record, hit.score, scene, kind, heard=heard, page=page))
        return results

    async def file_vector(
        self, file_id: str, kind: str = VISUAL, collection: str | None = None, index: int = 0
    ) -> list[float] | None:
        """The vector of a file's scene or window ``index`` (the first: an image's own)."""
        found = await self._vectors.retrieve_vectors(
            collection or self.serving_collection(kind), [point_id(file_id, index)]
        )
        return next(iter(found.values()), None)

    # health and maintenance ------------------------------------------------------------

    async def counts(self, vectors: dict[str, int] | None = None) -> dict[str, Any]:
        """Files by status and type, and the visual vectors (from ``vectors``, the
        ``vector_counts`` a caller already has, rather than counted twice)."""
        return {
            "files": await self._metadata.status_counts(),
            "indexed_by_type": await self._metadata.media_type_counts(),
            "vectors": vectors[VISUAL]
            if vectors is not None and VISUAL in vectors
            else await self._vectors.count(self.collection),
        }

    async def vector_counts(self) -> dict[str, int]:
        """How many vectors each engine kind's collection holds."""
        return {k: await self._vectors.count(c) for k, c in self._collections.items()}

    async def points_per_file(self) -> dict[str, int]:
        """How many vectors each file has (consistency checks)."""
        grouped = await self._vectors.file_point_ids(self.collection)
        return {file_id: len(ids) for file_id, ids in grouped.items()}

    async def optimize(self) -> None:
        for collection in self._collections.values():
            await self._vectors.optimize(collection)

    async def requeue_untranscribed(self, transcriber: str) -> int:
        return await self._metadata.requeue_untranscribed(transcriber)

    async def reconcile(self) -> tuple[list[FileRecord], dict[str, list[str]]]:
        """Repair what a crash may have left and return the files to process again, and
        which of them belong to a job still running (by job id)."""
        for record in await self._metadata.files_with_status([FileStatus.DELETED]):
            await self.delete_file(record.id)
        known = await self._metadata.file_ids()
        indexed = await self._metadata.file_ids(FileStatus.INDEXED)
        grouped: dict[str, set[str]] = {}
        for collection in self._all_collections():
            points = await self._vectors.file_point_ids(collection)
            orphans = [p for f, ids in points.items() if f not in known for p in ids]
            if orphans:
                log.info("reconcile: removing %d vectors whose file is gone", len(orphans))
                await self._vectors.delete_points(collection, orphans)
            if collection == self._collections.get(VISUAL):
                grouped = points
        pictured = indexed - await self._metadata.file_ids(FileStatus.INDEXED, media_type="audio")
        lost = sorted(pictured - grouped.keys())
        for file_id in lost:
            await self._metadata.set_status(file_id, FileStatus.QUEUED, progress=0.0)
        if lost:
            log.warning("reconcile: %d indexed files had no vectors; re-queued", len(lost))
        jobs = await self._metadata.settle_jobs()
        return await self._metadata.files_with_status(list(UNFINISHED)), jobs

    async def reset(self, reset_type: str) -> dict[str, int]:
        """``index``: remove vectors, re-queue every file. ``database``: forget files,
        scenes, jobs and vectors, keep watched folders. ``all``: also folders and caches.

        Crash-safe: the reset is written to a journal first and every step is idempotent,
        so ``resume_reset`` at start-up finishes one that a crash interrupted. The
        collection itself is emptied, never removed, so searches meanwhile find less,
        never fail."""
        await asyncio.to_thread(_write_durably, self._journal, reset_type)
        removed = await self._reset(reset_type)
        await asyncio.to_thread(self._journal.unlink, True)
        return removed

    async def resume_reset(self) -> str | None:
        """Finish an interrupted reset; returns its type, or None when there was none."""
        try:
            reset_type = (await asyncio.to_thread(self._journal.read_text)).strip()
        except FileNotFoundError:
            return None
        if reset_type not in RESET_TYPES:
            log.error("ignoring an unreadable reset journal (%r)", reset_type[:40])
        else:
            log.warning("finishing a reset '%s' that was interrupted", reset_type)
            await self._reset(reset_type)
        await asyncio.to_thread(self._journal.unlink, True)
        return reset_type if reset_type in RESET_TYPES else None

    async def _reset(self, reset_type: str) -> dict[str, int]:
        removed: dict[str, int] = {"vectors": 0}
        stored = await self._claimed_collections()
        for collection in self._all_collections():
            if collection in stored:
                removed["vectors"] += await self._vectors.count(collection)
                await self._vectors.clear(collection)
        if reset_type == "index":
            removed["requeued_files"] = await self._metadata.requeue_all()
            return removed
        removed.update(await self._metadata.clear_files())
        if reset_type == "all":
            removed["folders"] = await self._metadata.clear_folders()
            removed["cache_files"] = await self._cache.empty(derived_only=False)
        else:
            await self._cache.empty(derived_only=True)
        return removed


RESET_TYPES = ("all", "database", "index")


def _write_durably(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".tmp")
    with staging.open("w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    staging.replace(path)
