"""pocketsphinx: a small real English recognizer whose model ships inside its package.

Its endpointer finds the stretches of speech in the 16 kHz stream; each is decoded as one
utterance, and the word timings trim it to where the first word starts and the last ends.
Decoders are not thread-safe and take half a second to load, so idle ones are kept for the
next file.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from msearch.config import SpeechSettings
from msearch.errors import ModelUnavailable
from msearch.media.audio import pcm_stream
from msearch.speech.transcriber import SpokenSegment

RATE = 16_000
_FRAMES_PER_SECOND = 100  # pocketsphinx's frame rate
# A stretch of speech longer than this is cut (a tone or music the endpointer takes for
# speech could otherwise run for an hour): memory and each decode stay bounded.
MAX_SEGMENT_S = 30.0
_NOT_WORDS = {"<s>", "</s>", "<sil>", "[NOISE]", "[SPEECH]", "[BREATH]", "[COUGH]", "[UM]"}


class SphinxTranscriber:
    def __init__(self, settings: SpeechSettings) -> None:
        if settings.language not in ("auto", "en"):
            raise ModelUnavailable(
                f"pocketsphinx knows English only, not {settings.language!r} (speech.language)"
            )
        try:
            import pocketsphinx  # noqa: F401
        except ImportError as exc:
            raise ModelUnavailable(
                "pocketsphinx is not installed (pip install 'msearch[speech]')"
            ) from exc
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._idle.put(self._decoder())  # loads now: a broken install shows at start-up

    @property
    def name(self) -> str:
        return "pocketsphinx"

    @property
    def model(self) -> str:
        return "en-us"  # the one its package ships

    @staticmethod
    def _decoder() -> Any:
        from pocketsphinx import Decoder

        try:
            return Decoder(samprate=RATE, loglevel="FATAL")
        except Exception as exc:
            raise ModelUnavailable(f"pocketsphinx cannot load its model: {exc}") from exc

    def transcribe(
        self,
        path: Path,
        *,
        pass_fds: tuple[int, ...] = (),
        stop: threading.Event | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> Iterator[SpokenSegment]:
        try:
            decoder = self._idle.get_nowait()
        except queue.Empty:
            decoder = self._decoder()
        try:
            with pcm_stream(
                path, rate=RATE, sample_format="s16le", pass_fds=pass_fds, stop=stop
            ) as stream:
                for start, speech in _speech(stream, stop, progress):
                    segment = _decode(decoder, start, speech)
                    if segment is not None:
                        yield segment
        finally:
            self._idle.put(decoder)


def _speech(
    stream: IO[bytes], stop: threading.Event | None, progress: Callable[[float], None] | None
) -> Iterator[tuple[float, bytes]]:
    """(start in seconds, 16-bit samples) of each stretch of speech the endpointer finds."""
    from pocketsphinx import Endpointer

    endpointer = Endpointer(sample_rate=RATE)
    size = endpointer.frame_bytes
    longest = int(MAX_SEGMENT_S * 2 * RATE)  # bytes
    frames: list[bytes] = []
    held = 0
    held_over = False
    start = 0.0
    read = 0
    while stop is None or not stop.is_set():
        frame = stream.read(size)
        read += len(frame)
        last = len(frame) < size
        # the end flushes speech still open (it needs a sample: the stream may end on a
        # frame boundary)
        speech = endpointer.end_stream(frame or bytes(2)) if last else endpointer.process(frame)
        if speech is not None:
            if not frames and not held_over:
                start = endpointer.speech_start
            frames.append(speech)
            held += len(speech)
            if not endpointer.in_speech or held >= longest:
                yield start, b"".join(frames)
                # a stretch cut for its length goes on where this piece ends
                held_over = endpointer.in_speech
                start += held / (2 * RATE)
                frames.clear()
                held = 0
        if last:
            return
        if progress is not None and read % (size * 500) < size:
            progress(read / (2 * RATE))


def _decode(decoder: Any, start: float, speech: bytes) -> SpokenSegment | None:
    decoder.start_utt()
    decoder.process_raw(speech, full_utt=True)
    decoder.end_utt()
    words = [
        (w.word.split("(")[0], w.start_frame, w.end_frame)
        for w in decoder.seg()
        if w.word not in _NOT_WORDS and not w.word.startswith("++")
    ]
    if not words:
        return None
    return SpokenSegment(
        round(start + words[0][1] / _FRAMES_PER_SECOND, 2),
        round(start + (words[-1][2] + 1) / _FRAMES_PER_SECOND, 2),
        " ".join(w for w, _, _ in words),
        "en",
    )
