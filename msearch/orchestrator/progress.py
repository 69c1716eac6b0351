"""Progress: an enum of steps and a sink that records them."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum
from typing import Protocol


class Step(StrEnum):
    QUEUED = "queued"
    PREFLIGHT = "preflight"
    DECODE = "decode"
    ENHANCE = "enhance"
    EMBED = "embed"
    PERSIST = "persist"
    DONE = "done"


# How far through a file each step is, for the status endpoint's ``progress``.
STEP_FRACTION: dict[Step, float] = {
    Step.QUEUED: 0.0,
    Step.PREFLIGHT: 0.05,
    Step.DECODE: 0.2,
    Step.ENHANCE: 0.35,
    Step.EMBED: 0.5,
    Step.PERSIST: 0.9,
    Step.DONE: 1.0,
}


class ProgressSink(Protocol):
    def started(self, file_id: str) -> None: ...

    def finished(self, file_id: str) -> None: ...

    async def step(self, file_id: str, step: Step) -> None: ...

    async def advance(self, file_id: str, fraction: float) -> None: ...


class StoreProgressSink:
    """Writes a file's progress fraction through the adapter (visible over the API).

    Writes are throttled per file: an image passes every step within milliseconds, and a
    database write per step would cost more than the steps themselves. A step is recorded
    when the file's last recorded progress is at least ``min_interval_s`` old."""

    def __init__(
        self,
        adapter: _ProgressWriter,
        *,
        min_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._adapter = adapter
        self._min_interval = min_interval_s
        self._clock = clock
        self._last: dict[str, float] = {}

    def started(self, file_id: str) -> None:
        self._last[file_id] = self._clock()

    def finished(self, file_id: str) -> None:
        self._last.pop(file_id, None)

    async def step(self, file_id: str, step: Step) -> None:
        await self.advance(file_id, STEP_FRACTION[step])

    async def advance(self, file_id: str, fraction: float) -> None:
        now = self._clock()
        if now - self._last.get(file_id, 0.0) < self._min_interval:
            return
        self._last[file_id] = now
        await self._adapter.set_progress(file_id, round(fraction, 3))


class _ProgressWriter(Protocol):
    async def set_progress(self, file_id: str, progress: float) -> None: ...
