"""ProcessingOrchestrator: routes files through their stages with bounded concurrency,
records every outcome, and never lets one file's failure stop another."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from msearch.config import (
    AudioSettings,
    DocumentSettings,
    PerformanceSettings,
    SpeechSettings,
    VideoSettings,
)
from msearch.embedding.base import EmbeddingEngine
from msearch.embedding.registry import EngineKind, EngineRegistry
from msearch.errors import TRANSIENT_CODES, MSearchError, NotFound, UnsupportedMedia
from msearch.media.detect import MediaType
from msearch.media.enhance import ImageEnhancer
from msearch.media.originals import RootsProvider, canonical_path
from msearch.metrics import INDEX_FAILURES
from msearch.orchestrator.context import ProcessingContext
from msearch.orchestrator.diskspace import DiskSpaceGuard
from msearch.orchestrator.pipelines import PipelineParts, build_pipelines
from msearch.orchestrator.progress import ProgressSink, StoreProgressSink
from msearch.orchestrator.stages import Preflight, Stage
from msearch.speech.transcriber import Transcriber
from msearch.store.adapter import UnifiedDatabaseAdapter
from msearch.store.records import FileRecord, FileStatus, JobRecord

log = logging.getLogger(__name__)

# Optimise the vector index (HNSW build) once this many points were written since the last.
_OPTIMIZE_AFTER = 512


@dataclass
class _Work:
    file_id: str
    path: Path
    previous: FileRecord | None
    job_id: str | None
    done: asyncio.Future[FileRecord]
    attempt: int = 1


class _RetryLater(Exception):
    """The file's failure is transient: it is queued again after a back-off."""


class ProcessingOrchestrator:
    """Queue files, process them with at most ``max_concurrent_files`` in flight.

    ``submit``/``submit_batch`` return at once with the registered (queued) records;
    ``process_file``/``batch_process_files`` also wait for the outcomes. A file already
    queued is not queued twice: its callers share one outcome.
    """

    def __init__(
        self,
        adapter: UnifiedDatabaseAdapter,
        engines: EngineRegistry | EmbeddingEngine,
        settings: PerformanceSettings,
        *,
        video: VideoSettings | None = None,
        audio: AudioSettings | None = None,
        batch_size: int = 32,
        progress: ProgressSink | None = None,
        enhancer: ImageEnhancer | None = None,
        roots: RootsProvider | None = None,
        disk: DiskSpaceGuard | None = None,
        extensions: Iterable[str] | None = None,
        transcriber: Transcriber | None = None,
        speech: SpeechSettings | None = None,
        documents: DocumentSettings | None = None,
    ) -> None:
        self._adapter = adapter
        if not isinstance(engines, EngineRegistry):  # one engine: the visual one
            engines = EngineRegistry({EngineKind.VISUAL: engines})
        self._settings = settings
        self._progress = progress or StoreProgressSink(adapter)
        self._executor = ThreadPoolExecutor(
            settings.decode_workers, thread_name_prefix="msearch-media"
        )
        self._video_executor = ThreadPoolExecutor(
            settings.decode_workers, thread_name_prefix="msearch-video"
        )
        self._enhancer = enhancer
        self.disk = disk
        registry = engines

        def model_for(media_type: str | None) -> str | None:
            if media_type is None:
                return adapter.model_id
            return adapter.model_key(registry.kinds_for(media_type))

        self._preflight = Preflight(adapter, self._executor, roots, extensions, model_for)
        self._parts = PipelineParts(
            adapter=adapter,
            engines=engines,
            settings=settings,
            video=video or VideoSettings(),
            audio=audio or AudioSettings(),
            progress=self._progress,
            enhancer=enhancer,
            batch_size=batch_size,
            image_executor=self._executor,
            video_executor=self._video_executor,
            transcriber=transcriber,
            speech=speech,
            documents=documents or DocumentSettings(),
        )
        self._pipelines = build_pipelines(self._parts)
        self._queue: asyncio.Queue[_Work] = asyncio.Queue()
        self._pending: dict[str, _Work] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._register_lock = asyncio.Lock()
        self._idle = asyncio.Event()
        self._idle.set()
        self._written_since_optimize = 0
        self._retries: dict[str, asyncio.TimerHandle] = {}
        # Heard each time the queue empties (a model switch ends then).
        self.on_idle: Callable[[], Awaitable[None]] | None = None

    def use_transcriber(self, transcriber: Transcriber | None) -> None:
        """Hear what is said in files with ``transcriber`` (loaded after the queue was
        made; None: speech is off). Before ``start``: no file is in flight."""
        if self._workers:
            raise RuntimeError("the transcriber is chosen before the queue starts")
        self._parts = replace(self._parts, transcriber=transcriber)
        self._pipelines = build_pipelines(self._parts)

    async def start(self) -> None:
        if not self._workers:
            self._workers = [
                asyncio.create_task(self._worker(), name=f"msearch-worker-{i}")
                for i in range(self._settings.max_concurrent_files)
            ]

    async def stop(self) -> None:
        workers, self._workers = self._workers, []
        for timer in self._retries.values():  # they stay queued on disk for next time
            timer.cancel()
        self._retries.clear()
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for work in self._pending.values():
            if not work.done.done():
                work.done.cancel()
        self._pending.clear()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._video_executor.shutdown(wait=True, cancel_futures=True)
        if self._enhancer is not None:
            self._enhancer.close()

    # public API ------------------------------------------------------------------------

    async def submit(self, path: Path, *, job_id: str | None = None) -> FileRecord:
        return (await self._register([path], job_id))[0][0]

    async def submit_batch(self, paths: Sequence[Path]) -> tuple[JobRecord, list[FileRecord]]:
        job = JobRecord(id=uuid.uuid4().hex, total=len(paths))
        records, _ = await self._register(paths, job.id, job)
        return job, records

    async def process_file(self, path: Path) -> FileRecord:
        _, futures = await self._register([path], None)
        return await futures[0]

    async def batch_process_files(
        self, paths: Sequence[Path], *, on_done: Callable[[FileRecord], None] | None = None
    ) -> list[FileRecord]:
        """Process ``paths`` as one job; ``on_done`` hears of each file as it finishes."""
        job = JobRecord(id=uuid.uuid4().hex, total=len(paths))
        _, futures = await self._register(paths, job.id, job)
        if on_done is not None:
            for future in futures:
                future.add_done_callback(
                    lambda f: (
                        on_done(f.result()) if not f.cancelled() and not f.exception() else None
                    )
                )
        return list(await asyncio.gather(*futures))

    async def retry(
        self, file_ids: Sequence[str] | None = None
    ) -> tuple[JobRecord | None, list[FileRecord]]:
        """Process files again on purpose: these (any status but deleted), or every failed
        file. One job follows them; None when there is nothing to retry."""
        if file_ids is None:
            records = await self._adapter.files_with_status([FileStatus.FAILED])
        else:
            found = await self._adapter.get_files(file_ids)
            missing = [i for i in file_ids if i not in found]
            if missing:
                raise NotFound(
                    f"no file with id {missing[0]}"
                    + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                )
            records = list(found.values())
        if not records:
            return None, []
        return await self.submit_batch([Path(r.path) for r in records])

    async def enqueue(self, paths: Sequence[Path]) -> list[FileRecord]:
        """Queue files without a job (watched folders, re-queued files)."""
        return (await self._register(paths, None))[0]

    async def requeue(self, records: Iterable[FileRecord], *, job_id: str | None = None) -> int:
        """Process these files again (for ``job_id``, a job already counting them)."""
        paths = [Path(r.path) for r in records]
        return len((await self._register(paths, job_id))[0]) if paths else 0

    async def wait_for_files(self, file_ids: Iterable[str]) -> None:
        """Until none of these files is queued or in flight (whatever their outcome)."""
        waits = [self._pending[i].done for i in file_ids if i in self._pending]
        if waits:
            await asyncio.wait([asyncio.ensure_future(asyncio.shield(w)) for w in waits])

    def is_busy(self, file_id: str) -> bool:
        """Queued or in flight: its path must not be relocated or deleted under it."""
        return file_id in self._pending

    async def get_processing_status(self, file_id: str) -> FileRecord | None:
        return await self._adapter.get_file(file_id)

    async def wait_idle(self) -> None:
        await self._idle.wait()

    async def drain(self) -> int:
        """Drop the queued files (their waiters are cancelled) and wait for the files in
        flight to finish, so that nothing writes behind a reset. Returns how many were
        dropped."""
        dropped = 0
        for file_id, timer in list(self._retries.items()):
            timer.cancel()
            work = self._pending.pop(file_id, None)
            if work is not None and not work.done.done():
                work.done.cancel()
            dropped += 1
        self._retries.clear()
        while not self._queue.empty():
            work = self._queue.get_nowait()
            self._queue.task_done()
            self._pending.pop(work.file_id, None)
            if not work.done.done():
                work.done.cancel()
            dropped += 1
        if not self._pending:
            self._idle.set()
        await self.wait_idle()
        return dropped

    @property
    def queued(self) -> int:
        return len(self._pending)

    # internals -------------------------------------------------------------------------

    async def _register(
        self, paths: Sequence[Path], job_id: str | None, job: JobRecord | None = None
    ) -> tuple[list[FileRecord], list[asyncio.Future[FileRecord]]]:
        records: list[FileRecord] = []
        futures: list[asyncio.Future[FileRecord]] = []
        loop = asyncio.get_running_loop()
        # Resolving is a system call or more per path (10,000 in one request): off the loop,
        # and before the lock, which only the bookkeeping needs.
        resolved = await asyncio.to_thread(_canonical_paths, paths)
        async with self._register_lock:
            known = await self._adapter.get_files_by_path([str(p) for p in resolved])
            new_work: list[_Work] = []
            to_save: list[FileRecord] = []
            for path in resolved:
                previous = known.get(str(path))
                if previous is not None and previous.id in self._pending:
                    records.append(previous)
                    futures.append(self._pending[previous.id].done)
                    continue
                record = previous or FileRecord(
                    id=uuid.uuid4().hex, path=str(path), folder=str(path.parent)
                )
                snapshot = replace(record, scenes=list(record.scenes)) if previous else None
                to_save.append(record)
                work = _Work(record.id, path, snapshot, job_id, loop.create_future())
                self._pending[record.id] = work
                new_work.append(work)
                records.append(record)
                futures.append(work.done)
            await self._adapter.mark_queued(to_save)
            if job is not None:
                job.total = len(records)
                await self._adapter.create_job(job, [r.id for r in records])
            for work in new_work:
                self._idle.clear()
                self._queue.put_nowait(work)
        return records, futures

    async def _worker(self) -> None:
        while True:
            work = await self._queue.get()
            retrying = False
            try:
                if self.disk is not None:
                    await self.disk.wait_for_space()
                outcome = await self._process(work)
                if not work.done.done():
                    work.done.set_result(outcome)
            except _RetryLater as later:
                retrying = True
                self._retry_after(work, later.args[0])
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # the worker must survive anything
                log.exception("unexpected failure processing %s", work.path)
                if not work.done.done():
                    work.done.set_exception(exc)
            finally:
                if not retrying:
                    self._pending.pop(work.file_id, None)
                self._queue.task_done()
                if not self._pending:
                    await self._maybe_optimize()
                    await self._idle_hook()
                    if not self._pending:  # nothing came in meanwhile
                        self._idle.set()

    def _retry_after(self, work: _Work, delay: float) -> None:
        def again() -> None:
            self._retries.pop(work.file_id, None)
            if self._pending.get(work.file_id) is work:
                self._queue.put_nowait(work)

        work.attempt += 1
        self._retries[work.file_id] = asyncio.get_running_loop().call_later(delay, again)

    async def _process(self, work: _Work) -> FileRecord:
        record = await self._adapter.get_file(work.file_id)
        if record is None:  # deleted or reset while queued
            raise MSearchError(f"file {work.file_id} was removed before processing")
        await self._adapter.mark_processing(record)
        ctx = ProcessingContext(path=work.path, record=record, previous=work.previous)
        failed = False
        self._progress.started(record.id)
        ran: list[Stage] = []
        try:
            for stage in self._stages(ctx):
                if stage.applies(ctx):
                    ran.append(stage)
                    await self._progress.step(record.id, stage.step)
                    await stage.run(ctx)
            if ctx.skipped:
                await self._keep_previous(ctx)
            elif not ctx.vectors and not ctx.transcribed:
                raise MSearchError("no stage produced vectors for this file")
            else:
                self._written_since_optimize += sum(map(len, ctx.vectors.values()))
        except MSearchError as exc:
            code, message = exc.code, exc.message
            if ctx.original is not None and ctx.original.changed_since_opened():
                code, message = "file_changed", f"the file changed while it was read ({message})"
            if code in TRANSIENT_CODES and work.attempt < self._settings.retry_attempts:
                delay = self._settings.retry_backoff_s * 4 ** (work.attempt - 1)
                log.info(
                    "%s: %s; trying again in %gs (attempt %d of %d)",
                    work.path,
                    message,
                    delay,
                    work.attempt + 1,
                    self._settings.retry_attempts,
                )
                await self._adapter.mark_retrying(
                    record, code, f"{message}; trying again in {delay:g}s"
                )
                raise _RetryLater(delay) from exc
            if exc.skips_file:
                await self._adapter.mark_skipped(record, code, message)
            else:
                failed = True
                await self._fail(record, code, message)
        except Exception as exc:
            failed = True
            log.exception("processing %s failed unexpectedly", work.path)
            await self._fail(record, "internal_error", f"{type(exc).__name__}: {exc}")
        finally:
            self._progress.finished(record.id)
            if ctx.frames is not None:  # a stream left unread: stop its decoder
                await ctx.frames.aclose()
            for stage in ran:
                stage.cleanup(ctx)
        if work.job_id is not None:
            await self._adapter.record_job_progress(work.job_id, failed=failed)
        return ctx.previous if ctx.skipped and ctx.previous else record

    def _stages(self, ctx: ProcessingContext) -> Iterator[Stage]:
        """Preflight, then (unless it found nothing to do) the pipeline of the media type
        it detected."""
        yield self._preflight
        if ctx.skipped:
            return
        assert ctx.detected is not None
        pipeline = self._pipelines.get(ctx.detected.media_type)
        if pipeline is None:
            if ctx.detected.media_type == MediaType.DOCUMENT:
                raise UnsupportedMedia("documents are not indexed here (documents.enabled)")
            raise UnsupportedMedia(f"msearch cannot index {ctx.detected.media_type} files yet")
        yield from pipeline

    async def _fail(self, record: FileRecord, code: str, message: str) -> None:
        INDEX_FAILURES.labels(code=code).inc()
        await self._adapter.mark_failed(record, code, message)

    async def _keep_previous(self, ctx: ProcessingContext) -> None:
        """An unchanged file keeps its vectors; only size/mtime may be refreshed."""
        assert ctx.previous is not None
        kept = ctx.previous
        await self._adapter.keep_indexed(
            kept, size=ctx.record.size or kept.size, mtime=ctx.record.mtime or kept.mtime
        )

    async def _idle_hook(self) -> None:
        if self.on_idle is None:
            return
        try:
            await self.on_idle()
        except Exception:  # the worker must survive it; the next idle tries again
            log.exception("the work after the queue emptied failed")

    async def _maybe_optimize(self) -> None:
        if self._written_since_optimize < _OPTIMIZE_AFTER:
            return
        self._written_since_optimize = 0
        try:
            await self._adapter.optimize()
        except MSearchError:
            log.exception("optimising the vector index failed; search stays exact")


def _canonical_paths(paths: Sequence[Path]) -> list[Path]:
    return list(dict.fromkeys(canonical_path(raw) for raw in paths))
