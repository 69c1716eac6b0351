"""Sound indexing through the whole pipeline versus the model alone on pre-decoded windows.

    python scripts/bench_audio.py --model build/bench-models/clap-full-random --minutes 6

Writes ``--files`` recordings (44.1 kHz stereo FLAC, tones, sweeps and noise) of ``--minutes``
in all, then in one run: (1) the floor, the sound engine embedding the same windows already
decoded to WAV bytes, in the pipeline's batches; (2) ``msearch``'s pipeline indexing the files
from scratch (probe, FFmpeg decode to 48 kHz mono, windows, embed, persist). Both are seconds
of audio per second of wall time; their ratio is the pipeline's overhead. The two are
measured in turn ``--rounds`` times (this machine's speed drifts by several percent within
a minute) and the median ratio is the figure. Last line: JSON.
(``scripts/make_tiny_clap.py DIR --full`` writes a full-size random CLAP.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [
    "sine=frequency={f}",
    "aevalsrc='0.4*sin(2*PI*(200+{f}*t/4)*t)'",
    "anoisesrc=color=pink:amplitude=0.3",
]


def _write(folder: Path, files: int, minutes: float) -> list[Path]:
    seconds = minutes * 60 / files
    paths = []
    for i in range(files):
        source = SOURCES[i % len(SOURCES)].format(f=300 + 150 * i)
        path = folder / f"sound-{i}.flac"
        lavfi = ["-f", "lavfi", "-t", str(seconds), "-i", source]
        subprocess.run(
            ["ffmpeg", "-y", "-loglevel", "error", *lavfi, "-ar", "44100", "-ac", "2", str(path)],
            check=True,
        )
        paths.append(path)
    return paths


async def _floor(model: str, paths: list[Path], window: float, hop: float, batch: int) -> float:
    from msearch.config import EmbeddingSettings
    from msearch.embedding.infinity import InfinityEngine
    from msearch.media.audio import probe_sound, stream_windows, wav_bytes

    engine = InfinityEngine(
        EmbeddingSettings(model=model, device="cpu", timeout_s=600, batch_size=batch)
    )
    await engine.start()
    try:
        rate = engine.sampling_rate
        assert rate is not None, "not a sound model"
        clips = [
            wav_bytes(w.samples, rate)
            for path in paths
            for w in stream_windows(path, rate=rate, window_s=window, hop_s=hop)
        ]
        await engine.embed_audio(clips[:batch])  # warm-up
        started = time.perf_counter()
        for start in range(0, len(clips), batch):
            await engine.embed_audio(clips[start : start + batch])
        took = time.perf_counter() - started
    finally:
        await engine.stop()
    return sum(probe_sound(p).duration for p in paths) / took


async def _pipeline(
    model: str, visual: Path, paths: list[Path], data: Path, window: float, hop: float, batch: int
) -> tuple[float, int]:
    from msearch.config import load_settings
    from msearch.media.audio import probe_sound
    from msearch.services import build_services

    settings = load_settings(
        ROOT / "config" / "msearch.yaml",
        data_dir=data,
        embedding={"model": str(visual), "device": "cpu"},
        audio={"model": model, "window_seconds": window, "hop_seconds": hop, "batch_size": batch},
    )
    services = await build_services(settings)
    try:
        warm = await services.orchestrator.batch_process_files(paths[:1])  # model warm-up
        assert warm[0].status == "indexed", warm[0].error
        started = time.perf_counter()
        done = await services.orchestrator.batch_process_files(paths[1:])
        took = time.perf_counter() - started
        assert all(r.status == "indexed" for r in done), [r.error for r in done]
        windows = sum(len(r.sound_windows) for r in done)
    finally:
        await services.aclose()
    return sum(probe_sound(p).duration for p in paths[1:]) / took, windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a CLAP directory")
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--files", type=int, default=7)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--hop", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument(
        "--rounds", type=int, default=5, help="floor and pipeline measured in turn this often"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "scripts"))
    from make_tiny_clip import build as build_clip

    floors: list[float] = []
    pipelines: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = _write(folder, args.files, args.minutes)
        visual = build_clip(folder / "tiny-clip")
        for round_ in range(args.rounds):
            # in turn, so that a noisy neighbour slows both sides of a round alike
            floors.append(
                asyncio.run(_floor(args.model, paths[1:], args.window, args.hop, args.batch))
            )
            data = folder / f"data-{round_}"
            pipeline, windows = asyncio.run(
                _pipeline(args.model, visual, paths, data, args.window, args.hop, args.batch)
            )
            pipelines.append(pipeline)
            print(
                f"round {round_ + 1}: floor {floors[-1]:.1f} s of audio/s, pipeline "
                f"{pipeline:.1f} s of audio/s, ratio {pipeline / floors[-1]:.3f} "
                f"({windows} windows)",
                flush=True,
            )
    ratios = [p / f for p, f in zip(pipelines, floors, strict=True)]
    result = {
        "model": Path(args.model).name,
        "audio_minutes": round(args.minutes * (args.files - 1) / args.files, 2),
        "windows": windows,
        "rounds": args.rounds,
        "floor_audio_s_per_s": [round(f, 1) for f in floors],
        "pipeline_audio_s_per_s": [round(p, 1) for p in pipelines],
        "ratios": [round(r, 3) for r in ratios],
        "median_ratio": round(statistics.median(ratios), 3),
    }
    print(f"median ratio {result['median_ratio']:.3f} over {args.rounds} rounds")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
