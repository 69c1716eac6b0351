"""A blocking producer (FFmpeg decoding frames or sound) feeding the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable, Generator
from concurrent.futures import Executor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import closing
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


async def threaded(
    executor: Executor,
    produce: Callable[[threading.Event], Generator[T, None, None]],
    queue_size: int = 2,
) -> AsyncGenerator[T, None]:
    """The items of a blocking iterator run on ``executor``, through a small queue: the
    producer waits while the consumer is behind, and stops (its iterator closed, so its
    decoder ends) when the consumer goes away. Its exceptions are raised here."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=queue_size)
    stop = threading.Event()

    def put(item: object) -> bool:
        future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
        while True:  # back-pressure, but never block a cancelled run forever
            try:
                future.result(timeout=0.5)
                return True
            except FutureTimeout:
                if stop.is_set():
                    future.cancel()
                    return False

    def run() -> None:
        try:
            with closing(produce(stop)) as items:
                for item in items:
                    if not put(item):
                        return
            put(_DONE)
        except BaseException as exc:  # handed to the event loop, raised there
            put(exc)

    producer = loop.run_in_executor(executor, run)
    try:
        while (item := await queue.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        await producer
