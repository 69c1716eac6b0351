"""Transcription through the whole pipeline versus the transcriber alone, same recordings.

    python scripts/bench_speech.py --files 6 --minutes 6 [--engine faster-whisper --size base]

Writes ``--files`` recordings (44.1 kHz stereo FLAC) of ``--minutes`` in all: sentences
spoken by Debian's flite with pauses between them. Then in one run: (1) the transcriber alone
on the same sound already decoded to 16 kHz mono WAV (msearch's transcriber, pocketsphinx or
faster-whisper, reading the WAV; for faster-whisper also its own ``transcribe`` with its VAD
filter, for reference); (2) msearch's pipeline indexing the FLAC files from scratch (probe, FFmpeg
decode, voice activity, recognition, persist; sound search off so that only speech is
timed). Each is a real-time factor (seconds of work per second of sound); their ratio is the
pipeline's overhead. faster-whisper runs a Whisper of the real ``--size`` with random weights
(scripts/make_tiny_whisper.py): it decodes every window to CTranslate2's 224-token cap, more
than real speech needs, so its real-time factors are upper bounds. Last line: JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from msearch.config import SpeechSettings

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = [
    "welcome to the budget meeting",
    "the dog is barking at the red car",
    "please send the report before friday",
    "we will travel to the mountains next week",
    "the train leaves the station at nine",
    "turn left at the second traffic light",
]


def _duration(path: Path) -> float:
    from msearch.media.ffprobe import ffprobe

    return float(ffprobe(path)["format"]["duration"])


def _write(folder: Path, files: int, minutes: float) -> list[Path]:
    """Each file: sentences one after the other with two seconds of quiet between them."""
    spoken = []
    for i, sentence in enumerate(SENTENCES):
        wav = folder / f"said-{i}.wav"
        subprocess.run(["flite", "-voice", "slt", "-t", sentence, "-o", str(wav)], check=True)
        spoken.append(wav)
    lines = folder / "lines.txt"
    lines.write_text(
        "".join(f"file '{w}'\nfile '{folder / 'gap.wav'}'\n" for w in spoken), encoding="utf-8"
    )
    subprocess.run(
        [
            "ffmpeg",
            "-y",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-t",
            "2",
            "-i",
            "anullsrc=r=16000:cl=mono",
            str(folder / "gap.wav"),
        ],
        check=True,
    )
    round_s = sum(_duration(w) + 2.0 for w in spoken)
    seconds = minutes * 60 / files
    paths = []
    for i in range(files):
        path = folder / f"talk-{i}.flac"
        subprocess.run(
            [
                "ffmpeg",
                "-y",
                "-loglevel",
                "error",
                "-stream_loop",
                str(int(seconds // round_s)),
                "-f",
                "concat",
                "-safe",
                "0",
                "-i",
                str(lines),
                "-t",
                str(seconds),
                "-ar",
                "44100",
                "-ac",
                "2",
                str(path),
            ],
            check=True,
        )
        paths.append(path)
    return paths


def _alone(paths: list[Path], speech: SpeechSettings) -> tuple[float, int]:
    decoded = []
    for path in paths:
        wav = path.with_suffix(".16k.wav")
        subprocess.run(
            [
                "ffmpeg",
                "-y",
                "-loglevel",
                "error",
                "-i",
                str(path),
                "-ac",
                "1",
                "-ar",
                "16000",
                str(wav),
            ],
            check=True,
        )
        decoded.append(wav)
    from msearch.speech.transcriber import create_transcriber

    transcriber = create_transcriber(speech)
    started = time.perf_counter()
    segments = sum(len(list(transcriber.transcribe(w))) for w in decoded)
    return time.perf_counter() - started, segments


def _faster_whisper_itself(paths: list[Path], speech: SpeechSettings) -> float:
    """faster-whisper's own ``transcribe`` (its VAD filter, msearch's decoding options) on
    the decoded WAVs: for reference (it joins a whole file's speech into 30 s chunks, so
    it decodes a different number of windows than msearch's blocks)."""
    from faster_whisper import WhisperModel

    from msearch.speech.whisper import WhisperTranscriber, vad_options

    # the compute type and threads msearch would choose
    chosen = WhisperTranscriber(speech)
    model = WhisperModel(
        speech.model, device=chosen.device, compute_type=chosen.compute_type, cpu_threads=4
    )
    decoded = [path.with_suffix(".16k.wav") for path in paths]
    started = time.perf_counter()
    segments = 0
    for wav in decoded:
        found, _ = model.transcribe(
            str(wav),
            beam_size=speech.beam_size,
            temperature=0.0,
            vad_filter=True,
            vad_parameters=vad_options(),
            condition_on_previous_text=False,
        )
        segments += sum(1 for s in found if s.text.strip())
    return time.perf_counter() - started


async def _pipeline(
    visual: Path, paths: list[Path], data: Path, speech: SpeechSettings
) -> tuple[float, int]:
    from msearch.config import load_settings
    from msearch.services import build_services

    settings = load_settings(
        ROOT / "config" / "msearch.yaml",
        data_dir=data,
        embedding={"model": str(visual), "device": "cpu"},
        audio={"enabled": False},
        speech=speech.model_dump(),
    )
    services = await build_services(settings)
    try:
        started = time.perf_counter()
        done = await services.orchestrator.batch_process_files(paths)
        took = time.perf_counter() - started
        assert all(r.status == "indexed" for r in done), [r.error for r in done]
        segments = sum(r.audio["speech"]["segments"] for r in done if r.audio)
    finally:
        await services.aclose()
    return took, segments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument(
        "--engine", choices=["pocketsphinx", "faster-whisper"], default="pocketsphinx"
    )
    parser.add_argument("--size", choices=["tiny", "base", "small"], default="base")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "scripts"))
    from make_tiny_clip import build as build_clip
    from make_tiny_whisper import build as build_whisper

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = _write(folder, args.files, args.minutes)
        sound_s = sum(_duration(p) for p in paths)
        visual = build_clip(folder / "tiny-clip")
        speech = SpeechSettings(engine=args.engine, device=args.device, language="en")
        if args.engine == "faster-whisper":
            whisper = build_whisper(folder / "whisper", size=args.size) / "ct2"
            speech = speech.model_copy(update={"model": str(whisper)})
        alone, alone_segments = _alone(paths, speech)
        pipeline, segments = asyncio.run(_pipeline(visual, paths, folder / "data", speech))
        itself = _faster_whisper_itself(paths, speech) if args.engine != "pocketsphinx" else None
    result = {
        "engine": args.engine,
        "model": f"{args.size} (random weights)" if args.engine != "pocketsphinx" else "en-us",
        "device": args.device,
        "audio_minutes": round(sound_s / 60, 2),
        "segments": segments,
        "segments_alone": alone_segments,
        "rtf_alone": round(alone / sound_s, 4),
        "rtf_pipeline": round(pipeline / sound_s, 4),
        "ratio": round(alone / pipeline, 3),
        "rtf_faster_whisper_itself": round(itself / sound_s, 4) if itself else None,
    }
    print(
        f"real-time factor: transcriber alone {alone / sound_s:.3f}, pipeline "
        f"{pipeline / sound_s:.3f}; the pipeline runs at {alone / pipeline:.2f} of the alone speed"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
