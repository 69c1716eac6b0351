"""The transcriber interface, and the one the settings choose.

A transcriber reads a recording's first audio stream (FFmpeg decodes it to 16 kHz mono
as it goes, so an hour is never held whole), finds where someone speaks and yields one
segment per stretch of speech, with its start and end in seconds. It runs on a worker
thread; ``stop`` ends it early.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from msearch.config import SpeechSettings
from msearch.errors import MediaError


class SpeechFailed(MediaError):
    """The transcriber raised or ran out of time: the file stays indexed without words."""

    code = "speech_failed"


@dataclass(frozen=True)
class SpokenSegment:
    start: float
    end: float
    text: str
    language: str | None = None


class Transcriber(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str: ...

    def transcribe(
        self,
        path: Path,
        *,
        pass_fds: tuple[int, ...] = (),
        stop: threading.Event | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> Iterator[SpokenSegment]:
        """The segments of speech in ``path``, in order. ``progress`` hears the seconds
        of sound read so far."""
        ...


def create_transcriber(settings: SpeechSettings) -> Transcriber:
    """The engine ``speech.engine`` names; ModelUnavailable when it cannot load."""
    if settings.engine == "pocketsphinx":
        from msearch.speech.sphinx import SphinxTranscriber

        return SphinxTranscriber(settings)
    from msearch.speech.whisper import WhisperTranscriber

    return WhisperTranscriber(settings)
