"""Running FFmpeg's tools: one place for the timeout, the missing-binary error, and
ffprobe's JSON."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from msearch.errors import CorruptMedia, UnsupportedMedia


def run_tool(
    cmd: list[str], timeout: float, pass_fds: tuple[int, ...] = ()
) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            cmd, capture_output=True, timeout=timeout, check=False, pass_fds=pass_fds
        )
    except FileNotFoundError as exc:
        raise UnsupportedMedia("ffprobe/ffmpeg is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise CorruptMedia(f"{cmd[0]} did not finish within {timeout:g}s") from exc


def last_line(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1][-300:] if lines else "no output"


def ffprobe(path: Path, *, timeout: float = 60, pass_fds: tuple[int, ...] = ()) -> dict[str, Any]:
    """The container and its streams, as ffprobe reports them; CorruptMedia when it
    cannot read the file. ``pass_fds`` hands it the descriptors a ``/proc/self/fd`` path
    names."""
    result = run_tool(
        [
            "ffprobe",
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            str(path),
        ],
        timeout,
        pass_fds,
    )
    if result.returncode != 0:
        raise CorruptMedia(f"ffprobe cannot read the file: {last_line(result.stderr)}")
    data: dict[str, Any] = json.loads(result.stdout or b"{}")
    return data
