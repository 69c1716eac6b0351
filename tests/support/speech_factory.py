"""Recordings with known sentences at known seconds, spoken by Debian's flite."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from support.audio_factory import _ffmpeg

RATE = 16_000


def speech_wav(path: Path, sentence: str) -> Path:
    subprocess.run(["flite", "-voice", "slt", "-t", sentence, "-o", str(path)], check=True)
    return path


def _duration(path: Path) -> float:
    from msearch.media.ffprobe import ffprobe

    return float(ffprobe(path)["format"]["duration"])


def spoken(
    path: Path,
    sentences: list[tuple[float, str]],
    seconds: float,
    *,
    video: bool = False,
    codec: tuple[str, ...] = (),
) -> Path:
    """``path`` (its container by its name) in which each sentence starts at its second,
    quiet between them, ``seconds`` long; with ``video`` a moving test picture too."""
    with tempfile.TemporaryDirectory() as tmp:
        parts: list[str] = []
        cursor = 0.0
        for i, (at, sentence) in enumerate(sorted(sentences)):
            said = speech_wav(Path(tmp) / f"{i}.wav", sentence)
            parts += ["-f", "lavfi", "-t", f"{at - cursor:.3f}", "-i", f"anullsrc=r={RATE}:cl=mono"]
            parts += ["-i", str(said)]
            cursor = at + _duration(said)
        parts += ["-f", "lavfi", "-t", f"{max(0.5, seconds - cursor):.3f}"]
        parts += ["-i", f"anullsrc=r={RATE}:cl=mono"]
        inputs = sum(1 for p in parts if p == "-i")
        mix = "".join(f"[{i}:a]" for i in range(inputs)) + f"concat=n={inputs}:v=0:a=1[a]"
        args = [*parts]
        if video:
            args += ["-f", "lavfi", "-t", str(seconds), "-i", "testsrc=size=160x120:rate=10"]
            args += ["-filter_complex", mix, "-map", f"{inputs}:v", "-map", "[a]"]
            args += [
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
            ]
        else:
            args += ["-filter_complex", mix, "-map", "[a]", *codec]
        _ffmpeg(*args, "-ar", "44100", "-ac", "2", str(path))
    return path
