"""Indexing pauses while the data directory's disk is nearly full.

A full disk turns the vector store's memory-mapped writes into SIGBUS; stopping before
that keeps the service (and search) alive, and indexing resumes by itself once space is
freed."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


def _free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


class DiskSpaceGuard:
    def __init__(
        self,
        path: Path,
        min_free_bytes: int,
        *,
        interval_s: float = 5.0,
        free_bytes: Callable[[Path], int] = _free_bytes,
    ) -> None:
        self._path = path
        self._min_free = min_free_bytes
        self._interval = interval_s
        self._free_bytes = free_bytes
        self.paused: str | None = None  # why indexing waits, while it does

    def _free(self) -> int:
        try:
            return self._free_bytes(self._path)
        except OSError:
            return self._min_free  # cannot tell: do not stop indexing over it

    async def wait_for_space(self) -> None:
        """Return once the data directory has room; log when indexing pauses and resumes."""
        while (free := self._free()) < self._min_free:
            if self.paused is None:
                self.paused = (
                    f"low disk space: {free // (1 << 20)} MB free on {self._path}, "
                    f"below performance.min_free_disk_mb "
                    f"({self._min_free // (1 << 20)} MB)"
                )
                log.error(
                    "indexing paused (%s); search keeps working, indexing resumes "
                    "once space is freed",
                    self.paused,
                )
            await asyncio.sleep(self._interval)
        if self.paused is not None:
            log.warning("indexing resumed: disk space is available again")
            self.paused = None
