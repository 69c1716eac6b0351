"""Generated test sounds (FFmpeg lavfi sources) in the formats users have."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-y", "-hide_banner", "-loglevel", "error", *args], check=True)


def tone(
    path: Path,
    seconds: float = 3.0,
    *,
    frequency: int = 440,
    rate: int = 48_000,
    channels: int = 1,
    codec: tuple[str, ...] = (),
    source: str | None = None,
) -> Path:
    """A sine tone (or another lavfi ``source``) in the container ``path``'s name says,
    at ``rate`` with ``channels`` channels (the tone in each)."""
    lavfi = source or f"sine=frequency={frequency}:sample_rate={rate}"
    _ffmpeg(
        "-f",
        "lavfi",
        "-t",
        str(seconds),
        "-i",
        lavfi,
        "-ac",
        str(channels),
        "-ar",
        str(rate),
        *codec,
        str(path),
    )
    return path


def video_with_sound(path: Path, seconds: float = 4.0, *, sound: str | None = "sine") -> Path:
    """A small H.264 video with an AAC soundtrack (``sound``: a lavfi source, ``"silence"``
    for a silent track, None for no audio stream)."""
    args = ["-f", "lavfi", "-t", str(seconds), "-i", "testsrc=size=160x120:rate=10"]
    if sound is not None:
        source = "anullsrc=r=48000:cl=mono" if sound == "silence" else f"{sound}=frequency=300"
        args += ["-f", "lavfi", "-t", str(seconds), "-i", source]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if sound is not None:
        args += ["-c:a", "aac", "-shortest"]
    _ffmpeg(*args, str(path))
    return path
