"""The sound of a file, embedded window by window by every engine that hears its media
type (CLAP): the whole of an audio file, the soundtrack of a video.

FFmpeg decodes on a thread of the long-running pool; windows reach the event loop through
a small queue and go to the engine one by one, a bounded number ahead (the engine's
coalescer batches them with other files' windows), so an hour of sound never sits in
memory. A video's silent stretches are left out (nothing is heard there); a video whose
sound cannot be decoded is still indexed by its pictures, and its record says why it has no
sound vectors.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Generator
from concurrent.futures import Executor

from msearch.config import AudioSettings
from msearch.embedding.base import EmbeddingEngine
from msearch.embedding.registry import EngineKind, EngineRegistry
from msearch.errors import MediaError
from msearch.media.audio import stream_windows, wav_bytes
from msearch.orchestrator.context import ProcessingContext
from msearch.orchestrator.progress import Step
from msearch.orchestrator.threaded import threaded


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
        *,
        words_too: bool = False,
    ) -> None:
        """``words_too``: what is said is transcribed after this stage, so an audio file
        no sound model hears is still indexed, by its words."""
        self._engines = engines
        self._words_too = words_too
        self._media_type = media_type
        self._settings = settings
        self._executor = executor

    def applies(self, ctx: ProcessingContext) -> bool:
        return ctx.record.audio is not None

    async def run(self, ctx: ProcessingContext) -> None:
        engines = self._engines.hearing(self._media_type)
        if not engines:
            if self._media_type == "audio" and not self._words_too:
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
        # Each window is handed over alone as soon as it is decoded: the engine's coalescer
        # starts an idle model on the first one and fills its batches with every file's
        # windows while it is busy. Waiting for a batch of this file's own (45 s of sound)
        # kept the model idle for the first quarter-second of every file.
        embedding: deque[tuple[tuple[float, float], asyncio.Future[list[list[float]]]]] = deque()
        # this file's windows in the engine at once; with a batch decoded ahead of them,
        # three batches of sound are held, as when a file's windows went over in batches
        ahead = 2 * self._settings.batch_size

        def clips(
            stop: threading.Event,
        ) -> Generator[tuple[tuple[float, float], bytes], None, None]:
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
                yield (
                    (round(window.start, 3), round(window.end, 3)),
                    wav_bytes(window.samples, rate),
                )

        async def collect_oldest() -> None:
            span, embedded = embedding.popleft()
            vectors.extend(await embedded)
            spans.append(span)

        try:
            async for span, clip in threaded(
                self._executor, clips, queue_size=self._settings.batch_size
            ):
                embedding.append((span, asyncio.ensure_future(engine.embed_audio([clip]))))
                if len(embedding) >= ahead:
                    await collect_oldest()
            while embedding:
                await collect_oldest()
        finally:
            for _, embedded in embedding:  # left early: nobody waits for these any more
                embedded.cancel()
            await asyncio.gather(*(e for _, e in embedding), return_exceptions=True)
        if not spans and self._media_type == "audio":
            raise MediaError("no sound could be decoded from the file", code="corrupt_media")
        assert ctx.record.audio is not None
        ctx.record.audio["windows"] = [list(span) for span in spans]
        if spans:
            ctx.vectors[kind] = vectors
            ctx.windows[kind] = spans

    def cleanup(self, ctx: ProcessingContext) -> None:
        return None
