"""The one place that wires msearch together; the API lifespan and the CLI both use it."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from msearch.config import Settings
from msearch.datadir import DataDirLock
from msearch.devices import resolve_device
from msearch.embedding.base import EmbeddingEngine, is_multivector
from msearch.embedding.batching import CoalescingEngine
from msearch.embedding.factory import create_engine
from msearch.embedding.infinity import InfinityEngine
from msearch.embedding.models import BUILTIN_SOUND_MODELS, resolve_model
from msearch.embedding.registry import EngineKind, EngineRegistry
from msearch.errors import ModelUnavailable
from msearch.heap import collect_frozen
from msearch.media.enhance import ImageEnhancer
from msearch.orchestrator import ProcessingOrchestrator
from msearch.orchestrator.diskspace import DiskSpaceGuard
from msearch.search import Searcher
from msearch.speech.transcriber import Transcriber, create_transcriber
from msearch.store.adapter import ModelSwitch, UnifiedDatabaseAdapter
from msearch.store.factory import create_vector_store
from msearch.store.metadata import MetadataStore
from msearch.store.records import FileStatus
from msearch.store.vectors import collection_name
from msearch.watch import FolderMonitor

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    adapter: UnifiedDatabaseAdapter
    engines: EngineRegistry
    orchestrator: ProcessingOrchestrator
    searcher: Searcher
    monitor: FolderMonitor
    lock: DataDirLock
    model_error: str | None = None
    # the engines built here (a caller's engines are the caller's to stop)
    owned: list[EmbeddingEngine] = field(default_factory=list)
    starting: asyncio.Task[None] | None = None  # the model is loading (server start-up)
    fatal: str | None = None  # start-up failed beyond the model: the server must exit
    # during a model switch: the old model, answering its kind's queries until the new
    # collection is complete
    outgoing: dict[EngineKind, EmbeddingEngine] = field(default_factory=dict)
    # why what is said in files is not transcribed (speech off, or its engine cannot load)
    speech_off: str | None = None

    @property
    def engine(self) -> EmbeddingEngine:
        """The visual engine: every file has its vectors."""
        return self.engines.get(EngineKind.VISUAL)

    @property
    def ready(self) -> bool:
        return self.model_error is None and self.starting is None

    def media_roots(self) -> list[Path] | None:
        """Where a serving msearch may open originals: the allowed roots and the watched
        folders. None (no confinement) for a local command, which opens what its user
        names, and for a server with no root at all (clients can then submit no path)."""
        if not self.monitor.watching:
            return None
        roots = [*self.settings.allowed_roots(), *self.monitor.folder_paths()]
        return roots or None

    def require_ready(self) -> None:
        if self.starting is not None:
            raise ModelUnavailable(
                "the model is still loading; try again in a moment", code="model_loading"
            )
        if self.model_error is not None:
            raise ModelUnavailable(self.model_error)

    async def reset(self, reset_type: str) -> dict[str, int]:
        """Reset stores (see UnifiedDatabaseAdapter.reset); ``index`` re-embeds every file."""
        self.require_ready()
        await self.orchestrator.drain()
        removed = await self.adapter.reset(reset_type)
        if reset_type == "index":
            await self.orchestrator.requeue(
                await self.adapter.files_with_status([FileStatus.QUEUED])
            )
        elif reset_type == "all":
            await self.monitor.reload()  # the folders are forgotten: stop watching them
        elif self.monitor.watching:
            await self.monitor.rescan()  # watched folders stay: index them afresh
        return removed

    async def finish_switches(self) -> None:
        """End each model switch whose new collection is complete: queries move to the new
        model in the same step as the collection, and the old model is let go."""

        def swap(kind: str) -> None:
            self.searcher.use_engine(EngineKind(kind), self.engines.get(EngineKind(kind)))

        for kind in await self.adapter.finish_switches(swap):
            outgoing = self.outgoing.pop(EngineKind(kind), None)
            if outgoing is not None:
                await outgoing.stop()
                collect_frozen()  # a server froze the old model with its start-up

    async def aclose(self) -> None:
        try:
            if self.starting is not None:
                self.starting.cancel()
                await asyncio.gather(self.starting, return_exceptions=True)
            await self.monitor.stop()
            await self.orchestrator.stop()
            self.searcher.close()
            await asyncio.gather(*(engine.stop() for engine in self.owned))
            for outgoing in self.outgoing.values():
                await outgoing.stop()
            await self.adapter.close()
        finally:
            self.lock.release()


async def open_adapter(
    settings: Settings, *, owner: dict[str, Any] | None = None
) -> tuple[UnifiedDatabaseAdapter, DataDirLock]:
    """The stores alone, locked, for maintenance commands that need no model."""
    lock = DataDirLock(settings.data_dir)
    lock.acquire(owner=owner or {})
    adapter = _make_adapter(settings)
    try:
        await adapter.open()
        await adapter.use_stored_model()
    except BaseException:
        await adapter.close()
        lock.release()
        raise
    return adapter, lock


def _make_adapter(settings: Settings) -> UnifiedDatabaseAdapter:
    return UnifiedDatabaseAdapter(
        MetadataStore(settings.data_dir / "msearch.db"),
        create_vector_store(settings.qdrant, settings.data_dir),
        settings.data_dir / "cache",
    )


def _optional_engines(settings: Settings) -> dict[EngineKind, EmbeddingEngine]:
    """The engines beside the visual one that the settings turn on (each may still turn
    out unable to load: the registry then leaves it out)."""
    engines: dict[EngineKind, EmbeddingEngine] = {}
    if settings.audio.enabled:
        engines[EngineKind.AUDIO] = _engine_of(settings, EngineKind.AUDIO, settings.audio.model)
    if settings.documents.enabled and settings.documents.model:
        engines[EngineKind.DOCUMENT] = _engine_of(
            settings, EngineKind.DOCUMENT, settings.documents.model
        )
    return engines


def _engine_of(settings: Settings, kind: EngineKind, model: str) -> EmbeddingEngine:
    """``kind``'s engine, loading ``model`` (a name, an alias such as ``demo`` or a
    directory) the way the settings say for that kind."""
    cache_dir = settings.data_dir / "cache"
    if kind == EngineKind.AUDIO:  # sound is embedded in-process, also with embedding.url
        audio = settings.audio.model_copy(update={"model": model})
        inner = InfinityEngine(
            audio.engine_settings(settings.embedding, BUILTIN_SOUND_MODELS),
            cache_dir=cache_dir,
            setting="audio.model",
        )
        return CoalescingEngine(inner, max_batch=audio.batch_size)
    if kind == EngineKind.DOCUMENT:  # pages are embedded in-process, a batch at a time
        documents = settings.documents.model_copy(update={"model": model})
        return InfinityEngine(
            documents.engine_settings(settings.embedding),
            cache_dir=cache_dir,
            setting="documents.model",
        )
    return create_engine(
        settings.embedding.model_copy(update={"model": model}), cache_dir=cache_dir
    )


async def _transcriber(settings: Settings) -> tuple[Transcriber | None, str | None]:
    """The transcriber ``speech`` asks for, or why there is none (files are indexed all
    the same, without their words)."""
    if not settings.speech.enabled:
        return None, "speech.enabled is false"
    try:
        return await asyncio.to_thread(create_transcriber, settings.speech), None
    except ModelUnavailable as exc:
        log.warning("speech is not transcribed: %s", exc.message)
        return None, exc.message


def _enhancer(settings: Settings, engine: EmbeddingEngine) -> ImageEnhancer | None:
    if not settings.enhancement.enabled:
        return None
    enhancer = ImageEnhancer(
        settings.enhancement,
        device=resolve_device(settings.embedding.device),
        target_side=engine.input_size,
    )
    missing = enhancer.missing_weights()
    if missing:
        log.warning(
            "enhancement is on but weights are missing (%s): files are indexed "
            "unenhanced and say why",
            ", ".join(str(p) for p in missing),
        )
    return enhancer


async def build_services(
    settings: Settings,
    *,
    engine: EmbeddingEngine | None = None,
    engines: EngineRegistry | None = None,
    owner: dict[str, Any] | None = None,
    allow_degraded: bool = False,
    watch: bool = False,
    background: bool = False,
) -> Services:
    """Open the data directory, start the models and stores (an ``engine`` passed in is
    the visual one, and ``engines`` all of them, each with a collection of its own: shared,
    started if needed, never stopped here), repair what a crash left and
    re-queue unfinished files; with ``watch``, watch the folders (the server does, one-off
    CLI commands do not). With ``allow_degraded`` a model that cannot load leaves the
    service up (health and listings work; search and indexing answer 503). With
    ``background`` (the server) the model loads after this returns, so the port opens at
    once and /health says what is happening; a failure leaves it degraded."""
    data_dir = settings.data_dir
    lock = DataDirLock(data_dir)
    lock.acquire(owner=owner or {})
    adapter: UnifiedDatabaseAdapter | None = None
    services: Services | None = None
    try:
        adapter = _make_adapter(settings)
        await adapter.open()
        owned: list[EmbeddingEngine] = []
        if engines is None:
            if engine is None:
                engine = create_engine(settings.embedding, cache_dir=data_dir / "cache")
                owned.append(engine)
            optional = _optional_engines(settings)
            owned.extend(optional.values())
            engines = EngineRegistry({EngineKind.VISUAL: engine, **optional})
        engine = engines.get(EngineKind.VISUAL)
        orchestrator = ProcessingOrchestrator(
            adapter,
            engines,
            settings.performance,
            video=settings.video,
            audio=settings.audio,
            batch_size=settings.embedding.batch_size,
            enhancer=_enhancer(settings, engine),
            roots=lambda: services.media_roots() if services is not None else None,
            extensions=settings.file_monitoring.file_extensions,
            disk=DiskSpaceGuard(data_dir, settings.performance.min_free_disk_mb << 20),
            speech=settings.speech,
            documents=settings.documents,
        )
        services = Services(
            settings,
            adapter,
            engines,
            orchestrator,
            Searcher(
                adapter,
                engines,
                settings.performance,
                window_s=settings.audio.window_seconds,
                page_candidates=settings.documents.candidates,
            ),
            FolderMonitor(adapter, orchestrator, settings.file_monitoring),
            lock,
            owned=owned,
        )
    except BaseException:
        if adapter is not None:
            await adapter.close()
        lock.release()
        raise
    if background:
        services.starting = asyncio.create_task(_start_in_background(services, watch=watch))
        return services
    try:
        await _start(services, allow_degraded=allow_degraded, watch=watch)
    except BaseException:
        # An engine left running keeps worker threads alive: a server whose start-up
        # failed would hang instead of exiting for its supervisor to restart it.
        await services.aclose()
        raise
    return services


def engine_collection(settings: Settings, kind: EngineKind, engine: EmbeddingEngine) -> str:
    """The collection a kind's model writes: one per model, its kind in the name (two
    kinds may run one model). The visual one keeps the name indexes were built with."""
    if kind == EngineKind.VISUAL:
        return collection_name(engine.model_id, resolve_model(settings.embedding.model), engine.dim)
    return collection_name(f"{kind}_{engine.model_id}", engine.model_id, engine.dim)


async def _start_in_background(services: Services, *, watch: bool) -> None:
    """A model that cannot load leaves the service degraded; anything else (broken
    stores) is ``fatal``: the server exits non-zero for its supervisor to see."""
    try:
        await _start(services, allow_degraded=True, watch=watch)
    except Exception as exc:
        log.exception("start-up failed")
        services.model_error = f"start-up failed: {type(exc).__name__}: {exc}"
        services.fatal = services.model_error
    finally:
        services.starting = None


async def _start(services: Services, *, allow_degraded: bool, watch: bool) -> None:
    """Load the model, then what needs it: the collection, crash repair, the queue."""
    adapter, orchestrator = services.adapter, services.orchestrator
    try:
        await services.engines.start()
    except ModelUnavailable as exc:
        if not allow_degraded:
            raise
        log.error("%s", exc.message)
        services.model_error = exc.message
        return
    # The transcriber loads (or downloads, once) after the models, before the queue starts:
    # no file is processed without it while it is coming, and a service degraded for want
    # of its visual model says nothing of speech.
    transcriber, services.speech_off = await _transcriber(services.settings)
    orchestrator.use_transcriber(transcriber)
    for kind, engine in services.engines:
        switch = await adapter.activate_model(
            engine.model_id,
            engine_collection(services.settings, kind, engine),
            engine.dim,
            kind=kind,
            source=_model_setting(services.settings, kind),
            media_types=services.engines.media_types_of(kind),
            multivector=is_multivector(engine),
        )
        if switch is not None:
            await _keep_answering_with_old_model(services, switch)
    if services.settings.speech.enabled and services.speech_off is None:
        # a new transcriber (engine or model) hears every file with sound again
        again = await adapter.requeue_untranscribed(services.settings.speech.key)
        if again:
            log.info(
                "%d files with sound are transcribed again by %s",
                again,
                services.settings.speech.key,
            )
    if await adapter.resume_reset() == "all":
        await services.monitor.reload()
    await orchestrator.start()
    unfinished, jobs = await adapter.reconcile()
    if unfinished:
        log.info("re-queueing %d files left unfinished", len(unfinished))
        by_id = {r.id: r for r in unfinished}
        for job_id, file_ids in jobs.items():  # their jobs finish when they do
            await orchestrator.requeue(
                [by_id.pop(i) for i in file_ids if i in by_id], job_id=job_id
            )
        await orchestrator.requeue(by_id.values())
    orchestrator.on_idle = services.finish_switches
    await services.finish_switches()  # a switch a crash interrupted may be complete
    if watch:
        await services.monitor.start()


async def _keep_answering_with_old_model(services: Services, switch: ModelSwitch) -> None:
    """While the new model re-indexes, the old one embeds the queries for the old
    collection. Where it cannot (no longer loadable, or not recorded by an older msearch),
    search reads the new collection as it fills instead, and says so in the log."""
    kind = EngineKind(switch.kind)
    if switch.old_model is None:  # a kind new to the index: it has nothing to search yet
        services.adapter.serve_written(kind)
        return
    reason = "where the old model loads from was not recorded"
    if switch.old_source is not None:
        old = _engine_of(services.settings, kind, switch.old_source)
        try:
            await old.start()
        except ModelUnavailable as exc:
            reason = exc.message
        else:
            services.outgoing[kind] = old
            services.searcher.use_engine(kind, old)
            log.info("search keeps answering with %s during the switch", switch.old_model)
            return
    log.warning(
        "the old %s model %s cannot answer queries during the switch (%s): search covers "
        "the files re-indexed so far",
        kind,
        switch.old_model,
        reason,
    )
    services.adapter.serve_written(kind)


def _model_setting(settings: Settings, kind: EngineKind) -> str | None:
    """What the settings name as ``kind``'s model (where it loads from)."""
    if kind == EngineKind.VISUAL:
        return settings.embedding.model
    if kind == EngineKind.AUDIO:
        return settings.audio.model
    if kind == EngineKind.DOCUMENT:
        return settings.documents.model
    return None
