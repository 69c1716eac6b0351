"""Coalesce concurrent embedding calls (pictures, windows of sound) into full batches.

Files finish decoding one at a time and a file's sound is handed over a window at a
time, so an engine that batches whatever is queued (as Infinity does) mostly sees batches
of one or two: on a CPU that halves throughput. This wrapper gathers every call that
arrives while the engine is busy into the next batch (up to ``max_batch`` inputs). A
further batch joins the one running (up to ``max_in_flight``, so the engine can prepare it
during the forward pass) only once it is full. An idle engine gets a full batch at once,
and a partial one after it has waited ``gather_s`` for company: a job's first window of
sound went alone and cost a full-size CLAP half a second, ~3 % of ten minutes of sound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from PIL import Image

from msearch.embedding.base import EmbeddingEngine
from msearch.errors import EmbeddingError, EmbeddingTimeout

T = TypeVar("T")
Vectors = list[list[float]]


@dataclass
class _Request(Generic[T]):
    inputs: list[T]
    done: asyncio.Future[Vectors]
    arrived: float  # the event loop's clock


class _Gatherer(Generic[T]):
    """Full batches of one kind of input for ``embed``."""

    def __init__(
        self,
        embed: Callable[[list[T]], Awaitable[Vectors]],
        max_batch: int,
        max_in_flight: int,
        gather_s: float,
    ) -> None:
        self._embed = embed
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._gather_s = gather_s
        self._waiting: deque[_Request[T]] = deque()
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._gathering: asyncio.TimerHandle | None = None

    async def __call__(self, inputs: list[T]) -> Vectors:
        if not inputs:
            return []
        loop = asyncio.get_running_loop()
        request = _Request(list(inputs), loop.create_future(), loop.time())
        self._waiting.append(request)
        self._dispatch()
        return await request.done

    def _waiting_inputs(self) -> int:
        return sum(len(r.inputs) for r in self._waiting)

    def _may_send(self) -> bool:
        full = self._waiting_inputs() >= self._max_batch
        if self._in_flight:
            return full and self._in_flight < self._max_in_flight
        if full:
            return True
        # Idle with a partial batch: it goes once its oldest request has waited gather_s,
        # so a job's first window waits for the rest of its job, and a remainder that
        # waited out a busy engine (the end of a job) goes at once.
        loop = asyncio.get_running_loop()
        left = self._waiting[0].arrived + self._gather_s - loop.time()
        if left <= 0:
            return True
        if self._gathering is None:
            self._gathering = loop.call_later(left, self._gathered)
        return False

    def _gathered(self) -> None:
        self._gathering = None
        self._dispatch()

    def _dispatch(self) -> None:
        while self._waiting and self._may_send():
            batch = [self._waiting.popleft()]
            size = len(batch[0].inputs)
            while self._waiting and size + len(self._waiting[0].inputs) <= self._max_batch:
                request = self._waiting.popleft()
                batch.append(request)
                size += len(request.inputs)
            self._in_flight += 1
            task = asyncio.create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if not self._waiting and self._gathering is not None:
            self._gathering.cancel()
            self._gathering = None

    async def _run(self, batch: list[_Request[T]]) -> None:
        try:
            vectors = await self._embed([i for r in batch for i in r.inputs])
        except EmbeddingError as exc:
            if len(batch) > 1 and not isinstance(exc, EmbeddingTimeout):
                await self._one_by_one(batch)  # only the culprit's caller fails
            else:
                _fail(batch, exc)
        except BaseException as exc:  # every caller of the batch learns what happened
            _fail(batch, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        else:
            start = 0
            for request in batch:
                end = start + len(request.inputs)
                if not request.done.done():
                    request.done.set_result(vectors[start:end])
                start = end
        finally:
            self._in_flight -= 1
            self._dispatch()

    async def _one_by_one(self, batch: list[_Request[T]]) -> None:
        """A batch failed: each caller's inputs alone, so that one bad image or clip (or
        one bad query) never fails the files that happened to share its batch."""
        for request in batch:
            try:
                vectors = await self._embed(request.inputs)
            except EmbeddingError as exc:
                _fail([request], exc)
            else:
                if not request.done.done():
                    request.done.set_result(vectors)


def _fail(batch: list[_Request[T]], exc: BaseException) -> None:
    for request in batch:
        if not request.done.done():
            request.done.set_exception(exc)


class CoalescingEngine:
    """An EmbeddingEngine wrapper; texts (queries) pass straight through."""

    def __init__(
        self,
        inner: EmbeddingEngine,
        *,
        max_batch: int,
        max_in_flight: int = 2,
        gather_s: float = 0.1,
    ) -> None:
        self._inner = inner
        self._images = _Gatherer(inner.embed_images, max_batch, max_in_flight, gather_s)
        self._clips = _Gatherer(inner.embed_audio, max_batch, max_in_flight, gather_s)

    @property
    def model_id(self) -> str:
        return self._inner.model_id

    @property
    def dim(self) -> int:
        return self._inner.dim

    @property
    def input_size(self) -> int:
        return self._inner.input_size

    @property
    def sampling_rate(self) -> int | None:
        return self._inner.sampling_rate

    @property
    def relevance_floor(self) -> float | None:
        return self._inner.relevance_floor

    async def start(self) -> None:
        await self._inner.start()

    async def stop(self) -> None:
        await self._inner.stop()

    def for_queries(self) -> EmbeddingEngine:
        return self._inner.for_queries()  # queries are never batched with indexing

    async def embed_texts(self, texts: list[str]) -> Vectors:
        return await self._inner.embed_texts(texts)

    async def embed_images(self, images: list[Image.Image]) -> Vectors:
        return await self._images(images)

    async def embed_audio(self, clips: list[bytes]) -> Vectors:
        return await self._clips(clips)
