"""Making the index equal the disk for some paths (after events) or a whole folder (scans).

Both end in one comparison of what is on disk with what the index holds:
- a file the index lacks is queued, one whose size or mtime changed is queued again;
- a file the index holds that is no longer on disk is deleted from it, unless a new or
  changed file has the same content: then it moved, and keeps its id and vectors;
- files the orchestrator is still working on are left for later (``deferred``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from msearch.config import FileMonitoringSettings
from msearch.errors import TRANSIENT_CODES, MSearchError
from msearch.media.fingerprint import content_fingerprint
from msearch.media.scan import is_ignored, iter_media_files
from msearch.orchestrator import ProcessingOrchestrator
from msearch.store.adapter import UnifiedDatabaseAdapter
from msearch.store.records import FileRecord, FileStatus, FolderRecord

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    queued: int = 0
    moved: int = 0
    deleted: int = 0
    unchanged: int = 0
    still_failed: int = 0  # failed before, unchanged since: 'msearch retry' tries again
    deferred: list[str] = field(default_factory=list)
    present: bool = True  # False: a scanned folder was not there

    def add(self, other: SyncReport) -> None:
        self.queued += other.queued
        self.moved += other.moved
        self.deleted += other.deleted
        self.unchanged += other.unchanged
        self.still_failed += other.still_failed
        self.deferred.extend(other.deferred)

    def as_dict(self) -> dict[str, int]:
        return {
            "queued": self.queued,
            "moved": self.moved,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "still_failed": self.still_failed,
            "deferred": len(self.deferred),
        }


class FolderSync:
    def __init__(
        self,
        adapter: UnifiedDatabaseAdapter,
        orchestrator: ProcessingOrchestrator,
        monitoring: FileMonitoringSettings,
        *,
        hold: Callable[[str, os.stat_result], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``hold(path, stat)`` says a file found by a walk may still be being written;
        it is then left out and reported as ``deferred`` (the watcher waits for it)."""
        self._clock = clock
        # A file gone from where events said it was stays indexed this long (its id by
        # when it was seen gone), so that the other half of a move, reported later or in
        # another batch (a storm, another watched folder), still finds its vectors.
        self._grace_s = 3 * monitoring.debounce_ms / 1000 + 2.0
        self._vanished: dict[str, float] = {}
        self._adapter = adapter
        self._hold = hold
        self._orchestrator = orchestrator
        self._ignore = list(monitoring.ignore)
        # One comparison at a time: two could both see one move and both act on it.
        self._lock = asyncio.Lock()

    def wanted(self, path: Path, folder: FolderRecord) -> bool:
        """Would a scan of ``folder`` look at the file at ``path``? (One of a type msearch
        does not index is recorded as skipped.)"""
        if not folder.covers(str(path)):
            return False
        relative = path.relative_to(folder.path).parts
        return not any(is_ignored(part, self._ignore) for part in relative)

    async def scan(self, folder: FolderRecord) -> SyncReport:
        """Compare the whole folder with the index. A folder that is not there (an
        unmounted drive) is left alone: its files are kept, not deleted."""
        root = Path(folder.path)
        if not await asyncio.to_thread(root.is_dir):
            log.warning(
                "watched folder %s is not there (unmounted?): its files stay in the "
                "index until it is back",
                root,
            )
            return SyncReport(present=False)
        on_disk = await asyncio.to_thread(self._walk, root, folder)
        held = self._held(on_disk)
        async with self._lock:
            known = {r.path: r for r in await self._adapter.files_in(folder)}
            report = await self._apply(on_disk, known)
        report.deferred.extend(held)
        return report

    async def sync_paths(self, paths: Iterable[str], folders: list[FolderRecord]) -> SyncReport:
        """Compare only ``paths`` (settled files or directories, present or gone) with the
        index. Files found below a directory may still be held."""
        on_disk: dict[str, os.stat_result] = {}
        held: list[str] = []
        async with self._lock:
            known: dict[str, FileRecord] = {}
            for raw in dict.fromkeys(paths):
                path = Path(raw)
                folder = next(
                    (f for f in folders if path == Path(f.path) or f.covers(str(path))), None
                )
                if folder is None or not await asyncio.to_thread(Path(folder.path).is_dir):
                    continue  # not watched, or the whole folder is away: keep its files
                found = await asyncio.to_thread(self._look, path, folder)
                settled = found.pop(raw, None)
                held.extend(self._held(found))
                on_disk.update(found)
                if settled is not None:
                    on_disk[raw] = settled
                known.update((r.path, r) for r in await self._adapter.files_below(raw))
            report = await self._apply(on_disk, known, grace=True)
        report.deferred.extend(held)
        return report

    # internals -------------------------------------------------------------------------

    def _held(self, on_disk: dict[str, os.stat_result]) -> list[str]:
        """Remove (and return) the files that may still be being written."""
        if self._hold is None:
            return []
        held = [p for p, info in on_disk.items() if self._hold(p, info)]
        for path in held:
            del on_disk[path]
        return held

    def _walk(self, root: Path, folder: FolderRecord) -> dict[str, os.stat_result]:
        found: dict[str, os.stat_result] = {}
        # iter_media_files applies the same ignore and depth rules as wanted()
        for path in iter_media_files(root, None, self._ignore, recursive=folder.recursive):
            try:
                found[str(path)] = path.lstat()
            except OSError:
                continue  # gone since the walk saw it
        return found

    def _look(self, path: Path, folder: FolderRecord) -> dict[str, os.stat_result]:
        try:
            info = path.lstat()
        except OSError:
            return {}
        if stat.S_ISLNK(info.st_mode):
            return {}  # links are never followed: what they point at may be anywhere
        if stat.S_ISDIR(info.st_mode):
            if path != Path(folder.path) and not folder.recursive:
                return {}
            if path != Path(folder.path) and any(
                is_ignored(p, self._ignore) for p in path.relative_to(folder.path).parts
            ):
                return {}
            return self._walk(path, folder)
        if stat.S_ISREG(info.st_mode) and self.wanted(path, folder):
            return {str(path): info}
        return {}

    @property
    def vanishing(self) -> int:
        """Files gone from their path, kept a moment for the other half of a move."""
        return len(self._vanished)

    async def expire_vanished(self) -> int:
        """Delete the files whose grace has passed and whose path is still empty."""
        now = self._clock()
        due = [i for i, seen in self._vanished.items() if now - seen >= self._grace_s]
        if not due:
            return 0
        deleted = 0
        async with self._lock:
            for file_id in due:
                self._vanished.pop(file_id, None)
                record = await self._adapter.get_file(file_id)
                if (
                    record is None
                    or _regular_file(record.path)
                    or self._orchestrator.is_busy(file_id)
                ):
                    continue  # moved meanwhile, back again, or being processed
                deleted += await self._adapter.delete_file(file_id)
        return deleted

    async def _apply(
        self,
        on_disk: dict[str, os.stat_result],
        known: dict[str, FileRecord],
        *,
        grace: bool = False,
    ) -> SyncReport:
        report = SyncReport()
        unknown = [p for p in on_disk if p not in known]
        known.update(await self._adapter.get_files_by_path(unknown))
        gone = [r for p, r in known.items() if p not in on_disk and not _regular_file(p)]
        arrived: list[str] = []  # new or changed: maybe where a gone file went
        for path, info in on_disk.items():
            record = known.get(path)
            if record is None:
                arrived.append(path)
            elif self._orchestrator.is_busy(record.id):
                report.deferred.append(path)
            elif _same_file(record, info):
                if record.status == FileStatus.FAILED:
                    report.still_failed += 1
                else:
                    report.unchanged += 1
            else:
                arrived.append(path)
        moves = await self._match_moves(arrived, on_disk)
        to_queue: list[Path] = []
        for path in arrived:
            source = moves.get(path)
            if source is None:
                to_queue.append(Path(path))
                continue
            if await self._relocate(source, path, known.get(path)):
                report.moved += 1
            else:
                to_queue.append(Path(path))
        moved_ids = {r.id for r in moves.values()}
        for file_id in moved_ids:
            self._vanished.pop(file_id, None)
        now = self._clock()
        for record in gone:
            if record.id in moved_ids:
                continue
            if self._orchestrator.is_busy(record.id):
                report.deferred.append(record.path)
                continue
            if grace and now - self._vanished.setdefault(record.id, now) < self._grace_s:
                continue  # expire_vanished deletes it unless its move shows up first
            self._vanished.pop(record.id, None)
            await self._adapter.delete_file(record.id)
            report.deleted += 1
        if to_queue:
            await self._orchestrator.enqueue(to_queue)
            report.queued = len(to_queue)
        return report

    async def _match_moves(
        self, arrived: list[str], on_disk: dict[str, os.stat_result]
    ) -> dict[str, FileRecord]:
        """Which arrived path holds the content of which file that left its path. The
        other half of a move may not be in this batch (watchdog reports the source of a
        move out of a watched folder a little later), so every indexed file of the same
        size whose path is gone is a candidate; only those are hashed."""
        model = self._adapter.model_id
        sizes = {on_disk[p].st_size for p in arrived}
        if not sizes:
            return {}
        by_size: dict[int, list[FileRecord]] = defaultdict(list)
        seen: set[str] = set()
        for record in await self._adapter.files_with_size(sizes):
            if (
                record.id in seen
                or record.size not in sizes
                or record.status != FileStatus.INDEXED
                or record.model != model
                or not record.fingerprint
                or self._orchestrator.is_busy(record.id)
                or record.path in on_disk
                or os.path.lexists(record.path)
            ):
                continue
            seen.add(record.id)
            by_size[record.size].append(record)
        moves: dict[str, FileRecord] = {}
        for path in arrived:
            candidates = by_size.get(on_disk[path].st_size)
            if not candidates:
                continue
            try:
                fingerprint = await asyncio.to_thread(content_fingerprint, Path(path))
            except OSError:
                continue
            match = next((r for r in candidates if r.fingerprint == fingerprint), None)
            if match is not None:
                candidates.remove(match)
                moves[path] = match
        return moves

    async def _relocate(self, record: FileRecord, path: str, replaced: FileRecord | None) -> bool:
        """Point ``record`` at its new path; a file it replaced there leaves the index
        (never one in flight: a busy path is deferred before it gets here)."""
        if replaced is not None and replaced.id != record.id:
            await self._adapter.delete_file(replaced.id)
        source = record.path
        try:
            await self._adapter.relocate_file(record, path)
        except MSearchError as exc:
            log.warning(
                "could not move %s to %s in the index (%s): re-indexing it",
                source,
                path,
                exc.message,
            )
            await self._adapter.delete_file(record.id)
            return False
        log.info("moved %s -> %s (vectors kept)", source, path)
        return True


def _regular_file(path: str) -> bool:
    """A file replaced by a link (or anything else) has left the index's world."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _same_file(record: FileRecord, info: os.stat_result) -> bool:
    """Unchanged since it was processed: indexed, or failed for content that is the same
    (a bad file is not retried at every scan; changing it retries it). A failure that was
    not the file's fault (the model was down) is retried by every scan."""
    if record.status == FileStatus.FAILED and record.error_code in TRANSIENT_CODES:
        return False
    return (
        record.status in (FileStatus.INDEXED, FileStatus.FAILED, FileStatus.SKIPPED)
        and record.size == info.st_size
        and record.mtime == info.st_mtime
    )
