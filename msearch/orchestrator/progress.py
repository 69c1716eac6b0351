"""Progress: an enum of steps and a sink that records them."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol


class Step(StrEnum):
    QUEUED = "queued"
    PREFLIGHT = "preflight"
    DECODE = "decode"
    EMBED = "embed"
    PERSIST = "persist"
    DONE = "done"


# How far through a file each step is, for the status endpoint's ``progress``.
STEP_FRACTION: dict[Step, float] = {
    Step.QUEUED: 0.0,
    Step.PREFLIGHT: 0.05,
    Step.DECODE: 0.2,
    Step.EMBED: 0.5,
    Step.PERSIST: 0.9,
    Step.DONE: 1.0,
}


class ProgressSink(Protocol):
    async def step(self, file_id: str, step: Step) -> None: ...


class StoreProgressSink:
    """Writes a file's progress fraction through the adapter (visible over the API)."""

    def __init__(self, adapter: _ProgressWriter) -> None:
        self._adapter = adapter

    async def step(self, file_id: str, step: Step) -> None:
        await self._adapter.set_progress(file_id, STEP_FRACTION[step])


class _ProgressWriter(Protocol):
    async def set_progress(self, file_id: str, progress: float) -> None: ...
