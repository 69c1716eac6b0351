"""Check faster-whisper on the GPU: Whisper (random weights of the real size) through
msearch's transcriber on CUDA, in the compute type it chooses there (float16).

    python scripts/check_gpu_speech.py SPEECH_F32 [--sizes base small] [--minutes 10]

SPEECH_F32: 16 kHz mono float32 samples of spoken sentences (``--write OUT`` makes one from
flite speech, where FFmpeg and flite are; the GPU machine needs neither). For each size: the
device and compute type msearch chose; how many of the greedy tokens of one window agree
with float32 on the CPU (random weights have near-ties, so fp16 may part ways late); and the
real-time factor of ``--minutes`` of that speech looped, through msearch's block reader,
voice-activity detector and Whisper (every window decodes to the 224-token cap: an upper
bound). Last line: JSON.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def write(out: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from support.speech_factory import spoken

    from msearch.media.audio import pcm_stream

    sentences = [
        (1.0, "welcome to the budget meeting"),
        (6.0, "the dog is barking at the red car"),
        (12.0, "please send the report before friday"),
        (18.0, "we will travel to the mountains next week"),
        (24.0, "the train leaves the station at nine"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        flac = spoken(Path(tmp) / "talk.flac", sentences, 30.0)
        with pcm_stream(flac, rate=16_000, sample_format="f32le") as stream:
            out.write_bytes(stream.read())


def _window_tokens(model_dir: Path, audio: Any, device: str, compute_type: str) -> list[int]:
    from faster_whisper import WhisperModel

    model = WhisperModel(str(model_dir), device=device, compute_type=compute_type)
    segments, _ = model.transcribe(
        audio[: 16_000 * 30],
        language="en",
        beam_size=1,
        temperature=0.0,
        without_timestamps=True,
        suppress_blank=False,
        suppress_tokens=[],
        condition_on_previous_text=False,
        no_speech_threshold=None,
        compression_ratio_threshold=None,
        log_prob_threshold=None,
    )
    return [token for segment in segments for token in segment.tokens]


def check(size: str, speech: Any, minutes: float, device: str, work: Path) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "scripts"))
    from make_tiny_whisper import build

    from msearch.config import SpeechSettings
    from msearch.speech.whisper import RATE, WhisperTranscriber, _blocks_of_speech

    model_dir = build(work / size, size=size) / "ct2"
    transcriber = WhisperTranscriber(
        SpeechSettings(model=str(model_dir), device=device, language="en")
    )
    chosen = _window_tokens(model_dir, speech, transcriber.device, transcriber.compute_type)
    reference = _window_tokens(model_dir, speech, "cpu", "float32")
    agree = next(
        (i for i, (a, b) in enumerate(zip(chosen, reference, strict=False)) if a != b),
        min(len(chosen), len(reference)),
    )
    looped = np.tile(speech, int(np.ceil(minutes * 60 * RATE / len(speech))))
    looped = looped[: int(minutes * 60 * RATE)].astype(np.float32)
    stream = io.BytesIO(looped.tobytes())
    list(transcriber._segments(0.0, speech, [{"start": 0, "end": len(speech)}], None))  # warm
    started = time.perf_counter()
    segments = 0
    for offset, block, spans in _blocks_of_speech(stream, None, None):
        segments += sum(1 for _ in transcriber._segments(offset, block, spans, None))
    took = time.perf_counter() - started
    return {
        "size": size,
        "device": transcriber.device,
        "compute_type": transcriber.compute_type,
        "tokens_agreeing_with_cpu_fp32": agree,
        "tokens": len(reference),
        "audio_minutes": minutes,
        "segments": segments,
        "rtf": round(took / (minutes * 60), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("speech", type=Path)
    parser.add_argument("--write", action="store_true", help="write SPEECH_F32 and stop")
    parser.add_argument("--sizes", nargs="+", default=["base", "small"])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    if args.write:
        write(args.speech)
        return
    speech = np.frombuffer(args.speech.read_bytes(), dtype=np.float32)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            result = check(size, speech, args.minutes, args.device, Path(tmp))
            print(result, flush=True)
            results.append(result)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
