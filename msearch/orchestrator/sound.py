"""The sound of a file, embedded window by window by every engine that hears its media
type (CLAP): the whole of an audio file, the soundtrack of a video.

FFmpeg decodes on a thread of the long-running pool; windows reach the event loop through
a small queue as they are embedded, a batch at a time, so an hour of sound never sits in
memory. A video's silent stretches are left out (nothing is heard there); a video whose
sound cannot be decoded is still indexed by its pictures, and its record says why it has no
sound vectors.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from concurrent.futures import Executor

from msearch.config import AudioSettings
from msearch.embedding.base import EmbeddingEngine
from msearch.embedding.registry import EngineKind, EngineRegistry
from msearch.errors import MediaError
from msearch.media.audio import SoundWindow, stream_windows, wav_bytes
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

        def batches(
            stop: threading.Event,
        ) -> Generator[tuple[list[SoundWindow], list[bytes]], None, None]:
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
