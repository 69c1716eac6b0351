"""The sound of a file, embedded window by window by every engine that hears its media
type (CLAP): the whole of an audio file, the soundtrack of a video.

FFmpeg decodes on a thread of the long-running pool; windows reach the event loop through
a small queue as they are embedded, a batch at a time, so an hour of sound never sits in
memory. A video's silent stretches are left out (nothing is heard there); a video whose
sound cannot be decoded is still indexed by its pictures, and its record says why it has no
sound vectors.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import Executor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from msearch.config import AudioSettings
from msearch.embedding.base import EmbeddingEngine
from msearch.embedding.registry import EngineKind, EngineRegistry
from msearch.errors import MediaError
from msearch.media.audio import SoundWindow, stream_windows, wav_bytes
from msearch.orchestrator.context import ProcessingContext
from msearch.orchestrator.progress import Step

T = TypeVar("T")
_DONE = object()


class SoundModelOff(MediaError):
    code = "sound_model_unavailable"


class EmbedSound:
    step = Step.EMBED

    def __init__(
        self,
        engines: EngineRegistry,
        media_type: str,
        settings: AudioSettings,
        executor: Executor,
    ) -> None:
        self._engines = engines
        self._media_type = media_type
        self._settings = settings
        self._executor = executor

    def applies(self, ctx: ProcessingContext) -> bool:
        return ctx.record.audio is not None

    async def run(self, ctx: ProcessingContext) -> None:
        engines = self._engines.hearing(self._media_type)
        if not engines:
            if self._media_type == "audio":
                reason = self._engines.unavailable.get(EngineKind.AUDIO, "audio.enabled is false")
                raise SoundModelOff(f"sound search is off, so audio files wait: {reason}")
            return
        for kind, engine in engines:
            try:
                await self._embed(ctx, kind, engine)
            except MediaError as exc:
                if self._media_type == "audio":
                    raise
                # the pictures of a video stand without its sound
                assert ctx.record.audio is not None
                ctx.record.audio["error"] = {"code": exc.code, "message": exc.message}
                ctx.vectors.pop(kind, None)
                ctx.windows.pop(kind, None)

    async def _embed(self, ctx: ProcessingContext, kind: str, engine: EmbeddingEngine) -> None:
        rate = engine.sampling_rate
        if rate is None:
            return
        original = ctx.opened()
        skip_silence = self._media_type != "audio"
        vectors: list[list[float]] = []
        spans: list[tuple[float, float]] = []

        def batches(stop: threading.Event) -> Iterator[tuple[list[SoundWindow], list[bytes]]]:
            batch: list[SoundWindow] = []
            for window in stream_windows(
                original.reopen_path,
                rate=rate,
                window_s=self._settings.window_seconds,
                hop_s=self._settings.hop_seconds,
                pass_fds=(original.fd,),
                stop=stop,
            ):
                if skip_silence and window.silent:
                    continue
                batch.append(window)
                if len(batch) >= self._settings.batch_size:
                    yield batch, [wav_bytes(w.samples, rate) for w in batch]
                    batch = []
            if batch:
                yield batch, [wav_bytes(w.samples, rate) for w in batch]

        async for windows, clips in threaded(self._executor, batches):
            vectors.extend(await engine.embed_audio(clips))
            spans.extend((round(w.start, 3), round(w.end, 3)) for w in windows)
        if not spans and self._media_type == "audio":
            raise MediaError("no sound could be decoded from the file", code="corrupt_media")
        assert ctx.record.audio is not None
        ctx.record.audio["windows"] = [list(span) for span in spans]
        if spans:
            ctx.vectors[kind] = vectors
            ctx.windows[kind] = spans

    def cleanup(self, ctx: ProcessingContext) -> None:
        return None


async def threaded(
    executor: Executor, produce: Callable[[threading.Event], Iterator[T]], queue_size: int = 2
) -> AsyncGenerator[T, None]:
    """The items of a blocking iterator run on ``executor``, through a small queue: the
    producer waits while the consumer is behind, and stops when it goes away."""
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
            for item in produce(stop):
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
