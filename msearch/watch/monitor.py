"""FolderMonitor: watched folders kept equal to the disk.

Folders live in SQLite (plus ``file_monitoring.folders`` from the config). While the
server runs, each has a watchdog observer whose events feed a stability tracker; settled
paths are compared with the index (``FolderSync``). A scan at start-up finds what changed
while msearch was down, and a periodic rescan is the safety net behind events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.observers.api import BaseObserver

from msearch.config import FileMonitoringSettings
from msearch.errors import Conflict, InvalidRequest, NotFound
from msearch.orchestrator import ProcessingOrchestrator
from msearch.store.adapter import UnifiedDatabaseAdapter
from msearch.store.records import FolderRecord
from msearch.watch.observers import ObserverKind, start_observer, stop_observer
from msearch.watch.stability import FileStabilityTracker
from msearch.watch.sync import FolderSync, SyncReport

log = logging.getLogger(__name__)


class FolderMonitor:
    def __init__(
        self,
        adapter: UnifiedDatabaseAdapter,
        orchestrator: ProcessingOrchestrator,
        settings: FileMonitoringSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._adapter = adapter
        self._orchestrator = orchestrator
        self._settings = settings
        self._settle_s = settings.debounce_ms / 1000
        self._tracker = FileStabilityTracker(self._settle_s, clock=clock)
        self._sync = FolderSync(
            adapter, orchestrator, settings, hold=self._still_changing, clock=clock
        )
        self._folders: list[FolderRecord] = []
        self._observers: dict[int, tuple[BaseObserver, ObserverKind]] = {}
        self._scanning: set[int] = set()
        self._last_scan: dict[int, dict[str, Any]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._syncing = False
        # Everything done since start: how many files were queued, moved, deleted.
        self.totals = SyncReport()

    @property
    def watching(self) -> bool:
        return self._loop is not None

    def folder_paths(self) -> list[Path]:
        """The watched folders (while watching)."""
        return [Path(f.path) for f in self._folders]

    @property
    def idle(self) -> bool:
        """No change waiting to settle, being compared or being scanned, and no vanished
        file waiting for the other half of its move."""
        return not (len(self._tracker) or self._syncing or self._scanning or self._sync.vanishing)

    # lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Watch every folder, then scan them all in the background (changes made while
        msearch was down) and keep rescanning every ``rescan_interval_s``."""
        self._loop = asyncio.get_running_loop()
        for path in self._settings.folders:
            resolved = path.expanduser().resolve()
            if await self._adapter.folder_at(str(resolved)) is None:
                await self._adapter.add_folder(str(resolved), True)
        await self._reload()
        self._tasks = [
            asyncio.create_task(self._settle_loop(), name="msearch-watch"),
            asyncio.create_task(self._rescan_loop(), name="msearch-rescan"),
        ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for folder_id in list(self._observers):
            await self._unwatch(folder_id)
        self._loop = None

    async def reload(self) -> None:
        """Re-read the folders after the stores were reset."""
        if self.watching:
            await self._reload()

    # folders ---------------------------------------------------------------------------

    async def add(self, path: Path, recursive: bool = True) -> tuple[FolderRecord, bool]:
        """Watch (and index) ``path``. Returns the folder and whether it is new. A folder
        inside a recursive one already watched is refused; folders inside a new recursive
        one are merged into it (their files stay indexed)."""
        if not await asyncio.to_thread(path.is_dir):
            raise InvalidRequest(f"not a directory: {path}")
        folders = await self._adapter.list_folders()
        existing = next((f for f in folders if f.path == str(path)), None)
        for other in folders:
            if other is not existing and other.recursive and other.covers(str(path / "x")):
                raise Conflict(
                    f"{path} is already watched as part of {other.path} (folder {other.id})"
                )
        if recursive:
            for other in folders:
                if other is not existing and Path(other.path).is_relative_to(path):
                    log.info("folder %s is merged into %s", other.path, path)
                    await self._adapter.remove_folder(other.id)
                    await self._unwatch(other.id)
        folder = await self._adapter.add_folder(str(path), recursive)
        if existing is not None and existing.recursive != recursive:
            await self._unwatch(existing.id)  # watched again below with the new depth
        if self.watching:
            await self._reload()
        return folder, existing is None

    async def remove(self, folder_id: int, *, keep_files: bool = False) -> dict[str, Any]:
        """Stop watching; unless ``keep_files``, its files leave the index (those another
        watched folder also covers stay)."""
        folder = await self.get(folder_id)
        await self._unwatch(folder_id)
        others = [f for f in await self._adapter.list_folders() if f.id != folder_id]
        removed = 0
        if not keep_files:
            # Files first, the folder last: a crash in between leaves a folder that is
            # still watched (and can be removed again), never files that nothing watches.
            files = [
                r
                for r in await self._adapter.files_in(folder)
                if not any(o.covers(r.path) for o in others)
            ]
            await self._orchestrator.wait_for_files([r.id for r in files])
            for record in files:
                removed += await self._adapter.delete_file(record.id)
        await self._adapter.remove_folder(folder_id)
        if self.watching:
            await self._reload()
        return {"folder_id": folder_id, "path": folder.path, "files_removed": removed}

    async def get(self, folder_id: int) -> FolderRecord:
        folder = await self._adapter.get_folder(folder_id)
        if folder is None:
            raise NotFound(f"no watched folder with id {folder_id}")
        return folder

    async def rescan(self, folder_id: int | None = None) -> SyncReport:
        """Compare the folder (or every folder) with the disk now and queue what changed;
        returns once the changes are queued, not indexed."""
        folders = (
            [await self.get(folder_id)]
            if folder_id is not None
            else await self._adapter.list_folders()
        )
        total = SyncReport()
        for folder in folders:
            total.add(await self._scan(folder))
        return total

    async def views(self) -> list[dict[str, Any]]:
        """Each folder with its counts and watch state (API, CLI, web page). A scan that
        runs at any moment of this call shows as ``scanning``: the counts are read in
        between, so work in progress never looks finished."""
        scanning = set(self._scanning)
        summaries = await folder_summaries(self._adapter)
        scanning |= self._scanning
        pending = self._tracker.paths()
        for view in summaries:
            observer = self._observers.get(view["id"])
            folder = FolderRecord(view["id"], view["path"], view["recursive"])
            view.update(
                watching=observer[1] if observer else None,
                scanning=folder.id in scanning,
                pending_changes=sum(1 for p in pending if folder.covers(p)),
                last_scan=self._last_scan.get(folder.id),
            )
        return summaries

    # internals -------------------------------------------------------------------------

    async def _reload(self) -> None:
        self._folders = await self._adapter.list_folders()
        wanted = {f.id: f for f in self._folders}
        for folder_id in [i for i in self._observers if i not in wanted]:
            await self._unwatch(folder_id)
        for folder in self._folders:
            if folder.id not in self._observers and await self._watch(folder):
                self._start_scan(folder)

    async def _watch(self, folder: FolderRecord) -> bool:
        if not await asyncio.to_thread(Path(folder.path).is_dir):
            log.warning(
                "watched folder %s is not there; it is watched again once a rescan finds it",
                folder.path,
            )
            return False
        try:
            self._observers[folder.id] = await asyncio.to_thread(
                start_observer,
                Path(folder.path),
                folder.recursive,
                self._notify,
                mode=self._settings.observer,
                poll_interval_s=self._settings.poll_interval_s,
            )
        except OSError as exc:
            log.error("cannot watch %s: %s; only rescans will find its changes", folder.path, exc)
        return True

    async def _unwatch(self, folder_id: int) -> None:
        entry = self._observers.pop(folder_id, None)
        if entry is not None:
            await asyncio.to_thread(stop_observer, entry[0])

    def _still_changing(self, path: str, info: os.stat_result) -> bool:
        """While watching, a file found by a walk that events still name, or that was
        written moments ago, is left to settle first (it may be half copied)."""
        return self.watching and (
            path in self._tracker or time.time() - info.st_mtime < self._settle_s
        )

    def _notify(self, path: str) -> None:
        """From an observer's thread: hand the path to the loop (no event is dropped)."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed while stopping
                loop.call_soon_threadsafe(self._tracker.touch, path)

    def _start_scan(self, folder: FolderRecord) -> None:
        self._scanning.add(folder.id)  # already, so nobody sees it idle before it starts
        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(
            asyncio.create_task(self._scan_logged(folder), name=f"msearch-scan-{folder.id}")
        )

    async def _scan_logged(self, folder: FolderRecord) -> None:
        try:
            await self._scan(folder)
        except Exception:
            log.exception("scanning %s failed; the next rescan tries again", folder.path)

    async def _scan(self, folder: FolderRecord) -> SyncReport:
        self._scanning.add(folder.id)
        started = time.time()
        try:
            report = await self._sync.scan(folder)
        finally:
            self._scanning.discard(folder.id)
        if self.watching:
            for path in report.deferred:
                self._tracker.touch(path)
            if folder.id not in self._observers and report.present:
                await self._watch(folder)  # a folder that was away is back
        self._last_scan[folder.id] = {"at": started, **report.as_dict()}
        self.totals.add(report)
        if report.queued or report.moved or report.deleted:
            log.info("scan of %s: %s", folder.path, report.as_dict())
        return report

    async def _settle_loop(self) -> None:
        tick = min(max(self._settle_s / 4, 0.05), 0.5)
        while True:
            await asyncio.sleep(tick)
            if self._sync.vanishing:
                self._syncing = True
                try:
                    self.totals.deleted += await self._sync.expire_vanished()
                finally:
                    self._syncing = False
            due = self._tracker.due()
            if not due:
                continue
            self._syncing = True
            try:
                report = await self._sync.sync_paths(due, self._folders)
            except Exception:
                log.exception("applying %d changed paths failed; they are retried", len(due))
                report = SyncReport(deferred=due)
            finally:
                self._syncing = False
            self.totals.add(report)
            for path in report.deferred:
                self._tracker.touch(path)

    async def _rescan_loop(self) -> None:
        interval = self._settings.rescan_interval_s
        if interval <= 0:
            return
        while True:
            await asyncio.sleep(interval)
            for folder in list(self._folders):
                await self._scan_logged(folder)


async def folder_summaries(adapter: UnifiedDatabaseAdapter) -> list[dict[str, Any]]:
    """Every watched folder with its file counts (``queued`` includes files in flight);
    needs only the stores, so ``msearch status`` can show it without a model."""
    summaries: list[dict[str, Any]] = []
    for folder in await adapter.list_folders():
        counts = await adapter.status_counts(folder)
        summaries.append(
            {
                "id": folder.id,
                "path": folder.path,
                "recursive": folder.recursive,
                "present": await asyncio.to_thread(Path(folder.path).is_dir),
                "counts": {
                    "indexed": counts.get("indexed", 0),
                    "queued": counts.get("queued", 0) + counts.get("processing", 0),
                    "failed": counts.get("failed", 0),
                    "skipped": counts.get("skipped", 0),
                    "total": sum(counts.values()),
                },
                "added_at": folder.added_at,
            }
        )
    return summaries
