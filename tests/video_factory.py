"""Generated test videos with known cuts (FFmpeg lavfi sources, H.264)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

SOURCES = ("testsrc", "smptebars", "color=c=red", "mandelbrot", "smptehdbars",
           "color=c=blue", "cellauto", "testsrc2", "color=c=yellow", "life")


def segments_video(path: Path, durations: Sequence[float], *, size: str = "320x240",
                   rate: int = 25, sources: Sequence[str] = SOURCES) -> list[float]:
    """Concatenate lavfi sources of the given lengths; returns the cut times."""
    cmd = ["ffmpeg", "-y", "-hide_banner", "-loglevel", "error"]
    for i, duration in enumerate(durations):
        source = sources[i % len(sources)]
        sep = ":" if "=" in source else "="
        cmd += ["-f", "lavfi", "-t", str(duration), "-i", f"{source}{sep}size={size}:rate={rate}"]
    inputs = "".join(f"[{i}:v]" for i in range(len(durations)))
    cmd += ["-filter_complex", f"{inputs}concat=n={len(durations)}:v=1:a=0,format=yuv420p",
            "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", str(path)]
    subprocess.run(cmd, check=True)
    cuts, t = [], 0.0
    for duration in durations[:-1]:
        t += duration
        cuts.append(round(t, 3))
    return cuts


def audio_only(path: Path, seconds: float = 1.0) -> Path:
    """An MP4 with a sine tone and no video stream."""
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-t", str(seconds),
                    "-i", "sine=frequency=440", "-c:a", "aac", str(path)], check=True)
    return path
