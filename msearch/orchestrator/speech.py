"""What is said in a file with sound (an audio file, a video's soundtrack), transcribed
after its pictures and sound are embedded. A transcriber that fails or runs out of time
costs the file its words only: it is indexed all the same, and its record says why it
has no transcript."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Generator
from concurrent.futures import Executor
from contextlib import aclosing

from msearch.config import SpeechSettings
from msearch.errors import MediaError
from msearch.orchestrator.context import ProcessingContext
from msearch.orchestrator.progress import STEP_FRACTION, ProgressSink, Step
from msearch.orchestrator.threaded import threaded
from msearch.speech.transcriber import SpeechFailed, Transcriber
from msearch.store.adapter import SPEECH
from msearch.store.records import Passage

# Time for the transcriber to start (load, first decode) on top of its share per second.
_START_ALLOWANCE_S = 60.0


class Transcribe:
    step = Step.EMBED

    def __init__(
        self,
        transcriber: Transcriber,
        settings: SpeechSettings,
        executor: Executor,
        progress: ProgressSink,
    ) -> None:
        self._transcriber = transcriber
        self._settings = settings
        self._executor = executor
        self._progress = progress

    def applies(self, ctx: ProcessingContext) -> bool:
        return ctx.record.audio is not None

    async def run(self, ctx: ProcessingContext) -> None:
        audio = ctx.record.audio
        assert audio is not None
        try:
            ctx.passages = await self._transcribe(ctx)
        except Exception as exc:  # a transcriber's failure costs the file its words only
            failed = (
                exc
                if isinstance(exc, MediaError)
                else SpeechFailed(f"the transcriber failed: {exc}")
            )
            if not ctx.vectors:  # nothing else indexes the file (no sound model): it fails
                raise failed from (None if failed is exc else exc)
            ctx.passages = []
            audio["speech"] = {
                "by": self._settings.key,
                "error": {"code": failed.code, "message": failed.message},
            }
        else:
            ctx.transcribed = True
            languages = sorted({p.language for p in ctx.passages if p.language})
            audio["speech"] = {
                "by": self._settings.key,
                "engine": self._transcriber.name,
                "model": self._transcriber.model,
                "segments": len(ctx.passages),
                "languages": languages,
            }

    async def _transcribe(self, ctx: ProcessingContext) -> list[Passage]:
        original, record = ctx.opened(), ctx.record
        assert record.audio is not None
        duration = float(record.audio.get("duration") or record.duration or 0.0)
        limit_s = _START_ALLOWANCE_S + duration * self._settings.timeout_factor
        loop = asyncio.get_running_loop()
        start = STEP_FRACTION[Step.EMBED]
        share = STEP_FRACTION[Step.PERSIST] - start

        def report(heard_s: float) -> None:
            if duration > 0:
                fraction = start + share * min(1.0, heard_s / duration)
                asyncio.run_coroutine_threadsafe(self._progress.advance(record.id, fraction), loop)

        def passages(_: threading.Event) -> Generator[Passage, None, None]:
            halt = threading.Event()
            timer = threading.Timer(limit_s, halt.set)
            timer.start()
            try:
                segments = self._transcriber.transcribe(
                    original.reopen_path, pass_fds=(original.fd,), stop=halt, progress=report
                )
                for index, segment in enumerate(segments):
                    yield Passage(
                        SPEECH, index, segment.start, segment.end, segment.text, segment.language
                    )
            finally:
                timer.cancel()
            if halt.is_set():
                raise SpeechFailed(f"the transcription took longer than {limit_s:.0f} s")

        async with aclosing(threaded(self._executor, passages)) as found:
            return [passage async for passage in found]

    def cleanup(self, ctx: ProcessingContext) -> None:
        return None
