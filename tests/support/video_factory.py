"""Generated test videos with known cuts (FFmpeg lavfi sources, H.264)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

SOURCES = (
    "testsrc",
    "smptebars",
    "color=c=red",
    "mandelbrot",
    "smptehdbars",
    "color=c=blue",
    "cellauto",
    "testsrc2",
    "color=c=yellow",
    "life",
)


def segments_video(
    path: Path,
    durations: Sequence[float],
    *,
    size: str = "320x240",
    rate: int = 25,
    sources: Sequence[str] = SOURCES,
    grain: int = 0,
    preset: str = "ultrafast",
) -> list[float]:
    """Concatenate lavfi sources of the given lengths (film ``grain`` makes the bitrate and
    decoding cost those of real footage); returns the cut times."""
    cmd = ["ffmpeg", "-y", "-hide_banner", "-loglevel", "error"]
    for i, duration in enumerate(durations):
        source = sources[i % len(sources)]
        sep = ":" if "=" in source else "="
        cmd += ["-f", "lavfi", "-t", str(duration), "-i", f"{source}{sep}size={size}:rate={rate}"]
    inputs = "".join(f"[{i}:v]" for i in range(len(durations)))
    noise = f",noise=alls={grain}:allf=t" if grain else ""
    cmd += [
        "-filter_complex",
        f"{inputs}concat=n={len(durations)}:v=1:a=0{noise},format=yuv420p",
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-crf",
        "23",
        str(path),
    ]
    subprocess.run(cmd, check=True)
    cuts, t = [], 0.0
    for duration in durations[:-1]:
        t += duration
        cuts.append(round(t, 3))
    return cuts


def audio_only(path: Path, seconds: float = 1.0) -> Path:
    """An MP4 with a sine tone and no video stream."""
    subprocess.run(
        [
            "ffmpeg",
            "-y",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-t",
            str(seconds),
            "-i",
            "sine=frequency=440",
            "-c:a",
            "aac",
            str(path),
        ],
        check=True,
    )
    return path
