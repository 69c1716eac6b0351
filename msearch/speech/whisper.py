"""faster-whisper: Whisper through CTranslate2 (int8 on a CPU, fp16 on CUDA), after voice-
activity detection by the Silero model that ships inside the package.

The recording is read in blocks of BLOCK_S seconds of 16 kHz float samples, so an hour is
never held whole. In each block the voice-activity detector finds the stretches of speech
(none: Whisper is not asked, so silence and music cannot make it invent words); only those
are handed to Whisper, joined, and its segment times are mapped back onto the recording.
A stretch still going at a block's end is carried into the next block, so no sentence is
cut in two; stretches are at most MAX_SPEECH_S long, which bounds what is carried.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from msearch.config import SpeechSettings
from msearch.errors import ModelUnavailable
from msearch.media.audio import Samples, pcm_stream
from msearch.speech.transcriber import SpokenSegment

RATE = 16_000
BLOCK_S = 120.0
MAX_SPEECH_S = 30.0
_BYTES_PER_SAMPLE = 4  # f32le


def vad_options() -> Any:
    """Tighter than faster-whisper's defaults (2 s of silence ends a stretch, 0.4 s of
    padding): a stretch's edges stay within half a second of the voice, and a sentence
    is found where it is said."""
    from faster_whisper.vad import VadOptions

    return VadOptions(
        threshold=0.5,
        min_speech_duration_ms=250,
        max_speech_duration_s=MAX_SPEECH_S,
        min_silence_duration_ms=700,
        speech_pad_ms=200,
    )


def speech_spans(samples: Samples) -> list[dict[str, int]]:
    """The stretches of speech in 16 kHz mono float samples: ``{"start", "end"}`` in
    samples."""
    from faster_whisper.vad import get_speech_timestamps

    return list(get_speech_timestamps(samples, vad_options(), sampling_rate=RATE))


class WhisperTranscriber:
    def __init__(self, settings: SpeechSettings) -> None:
        try:
            import ctranslate2
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise ModelUnavailable(
                "faster-whisper is not installed (pip install 'msearch[speech]')"
            ) from exc
        self._settings = settings
        self._model_name = settings.model
        path = _model_path(settings.model)
        device = _device(settings.device)
        compute_type = settings.compute_type
        if compute_type == "default":
            supported = ctranslate2.get_supported_compute_types(device)
            preferred = "float16" if device == "cuda" else "int8"
            compute_type = preferred if preferred in supported else "float32"
        try:
            self._model = WhisperModel(
                path,
                device=device,
                compute_type=compute_type,
                cpu_threads=min(4, os.cpu_count() or 1),
                local_files_only=True,
            )
        except Exception as exc:
            raise ModelUnavailable(
                f"cannot load the speech model {settings.model!r} ({path}): {exc} "
                "(speech.model / MSEARCH_SPEECH__MODEL)"
            ) from exc
        language = settings.language
        if language != "auto" and language not in self._model.supported_languages:
            raise ModelUnavailable(
                f"the speech model {settings.model!r} does not know the language "
                f"{language!r} (speech.language)"
            )
        self.device, self.compute_type = device, compute_type

    @property
    def name(self) -> str:
        return "faster-whisper"

    @property
    def model(self) -> str:
        return self._model_name

    def transcribe(
        self,
        path: Path,
        *,
        pass_fds: tuple[int, ...] = (),
        stop: threading.Event | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> Iterator[SpokenSegment]:
        with pcm_stream(
            path, rate=RATE, sample_format="f32le", pass_fds=pass_fds, stop=stop
        ) as stream:
            for offset, block, spans in _blocks_of_speech(stream, stop, progress):
                yield from self._segments(offset, block, spans, stop)

    def _segments(
        self,
        offset: float,
        block: Samples,
        spans: list[dict[str, int]],
        stop: threading.Event | None,
    ) -> Iterator[SpokenSegment]:
        from faster_whisper.transcribe import restore_speech_timestamps
        from faster_whisper.vad import collect_chunks

        chunks, _ = collect_chunks(block, spans)
        language = None if self._settings.language == "auto" else self._settings.language
        segments, info = self._model.transcribe(
            np.concatenate(chunks),
            language=language,
            beam_size=self._settings.beam_size,
            # one greedy pass: the fallback ladder re-decodes a window up to six times
            temperature=0.0,
            vad_filter=False,
            # each block stands alone: a hallucination cannot feed the next window
            condition_on_previous_text=False,
        )
        spoken_s = sum(span["end"] - span["start"] for span in spans) / RATE
        for segment in restore_speech_timestamps(_within(segments, spoken_s), spans, RATE):
            if stop is not None and stop.is_set():
                return
            text = segment.text.strip()
            if text:
                yield SpokenSegment(
                    round(offset + segment.start, 2),
                    round(offset + segment.end, 2),
                    text,
                    info.language,
                )


def _within(segments: Iterable[Any], seconds: float) -> Iterator[Any]:
    """Segments whose times Whisper put past the speech it was given (it may, on a
    window padded with silence) are brought back inside it: a segment is placed where
    someone speaks."""
    for segment in segments:
        segment.start = min(max(segment.start, 0.0), seconds)
        segment.end = min(max(segment.end, segment.start), seconds)
        yield segment


def _blocks_of_speech(
    stream: IO[bytes], stop: threading.Event | None, progress: Callable[[float], None] | None
) -> Iterator[tuple[float, Samples, list[dict[str, int]]]]:
    """(offset in seconds, samples, stretches of speech in them) per block with speech."""
    size = int(BLOCK_S * RATE) * _BYTES_PER_SAMPLE
    carried = np.zeros(0, dtype=np.float32)
    offset = 0.0  # where ``carried`` starts
    read_s = 0.0
    while stop is None or not stop.is_set():
        data = stream.read(size)
        last = len(data) < size
        data = data[: len(data) - len(data) % _BYTES_PER_SAMPLE]
        block = np.concatenate([carried, np.frombuffer(data, dtype=np.float32)])
        read_s += len(data) / (_BYTES_PER_SAMPLE * RATE)
        spans = speech_spans(block) if len(block) else []
        carry_from = len(block)
        if not last and spans and spans[-1]["end"] >= len(block) - RATE // 10:
            carry_from = spans.pop()["start"]  # still speaking: finish it in the next block
        if spans:
            yield offset, block, spans
        if progress is not None:
            progress(read_s)
        if last:
            return
        carried = block[carry_from:].copy()
        offset += carry_from / RATE


def _device(setting: str) -> str:
    """CTranslate2 runs on CUDA or the CPU (no Apple GPU)."""
    from msearch.devices import resolve_device

    device = resolve_device(setting)
    return device if device in ("cuda", "cpu") else "cpu"


def _model_path(name: str) -> str:
    """A local CTranslate2 directory, or the hub model a size name stands for, from the
    Hugging Face cache or downloaded once (never with HF_HUB_OFFLINE set)."""
    from faster_whisper.utils import _MODELS, download_model

    from msearch.embedding.models import (
        cached_snapshot,
        probe_hub,
        unreachable_model,
    )

    local = Path(name).expanduser()
    if local.is_dir():
        if not (local / "model.bin").is_file():
            raise ModelUnavailable(
                f"{str(local)!r} is not a CTranslate2 Whisper model (no model.bin): convert "
                "it with ct2-transformers-converter (speech.model / MSEARCH_SPEECH__MODEL)"
            )
        return str(local.resolve())
    repo = _MODELS.get(name, name)
    cached = cached_snapshot(repo)
    if cached is not None and (Path(cached) / "model.bin").is_file():
        return cached
    reason = probe_hub(repo)
    if reason is not None:
        raise ModelUnavailable(
            unreachable_model(
                repo,
                reason,
                "speech.model",
                instead="set speech.engine to pocketsphinx (English; its model ships with it)",
            )
        )
    try:
        return str(download_model(name))
    except Exception as exc:
        raise ModelUnavailable(
            f"cannot download the speech model {name!r}: {exc} (speech.model)"
        ) from exc
