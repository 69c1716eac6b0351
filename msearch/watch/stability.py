"""Holding back paths that are still changing, so a file is processed once it is whole."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# What a path looks like on disk: (size, mtime in ns), or None when it is not there.
Signature = tuple[int, int] | None


def stat_signature(path: str) -> Signature:
    try:
        info = Path(path).stat()
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns


@dataclass
class _Pending:
    last_event: float
    signature: Signature
    stable_since: float


class FileStabilityTracker:
    """Paths named by file-system events wait here until they settle.

    A path is released when no event named it for ``settle_s`` and its size and mtime
    have not changed for as long (or it stayed missing: a deletion waits as long too,
    which gives the other half of a move time to arrive). A file
    written slowly, in chunks, keeps changing and is released once, when it is whole.
    The clock and the look are injectable so the rules can be tested without sleeping.
    """

    def __init__(
        self,
        settle_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        look: Callable[[str], Signature] = stat_signature,
    ) -> None:
        self._settle_s = settle_s
        self._clock = clock
        self._look = look
        self._pending: dict[str, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, path: object) -> bool:
        return path in self._pending

    def paths(self) -> list[str]:
        return list(self._pending)

    def touch(self, path: str) -> None:
        """An event named ``path``: (re)start its wait."""
        now = self._clock()
        signature = self._look(path)
        entry = self._pending.get(path)
        if entry is None:
            self._pending[path] = _Pending(now, signature, now)
            return
        entry.last_event = now
        if signature != entry.signature:
            entry.signature, entry.stable_since = signature, now

    def due(self) -> list[str]:
        """The paths that have settled; they leave the tracker."""
        now = self._clock()
        ready: list[str] = []
        for path, entry in list(self._pending.items()):
            if now - entry.last_event < self._settle_s:
                continue
            signature = self._look(path)
            if signature != entry.signature:
                entry.signature, entry.stable_since = signature, now
            if now - entry.stable_since >= self._settle_s:
                ready.append(path)
                del self._pending[path]
        return ready
