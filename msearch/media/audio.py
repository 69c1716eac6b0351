"""Sound: ffprobe facts, and windows of samples streamed from one FFmpeg decode.

FFmpeg decodes the first audio stream straight to what the sound model's feature extractor
wants (mono float at its rate, 48 kHz for LAION CLAP), whatever the file holds (8 kHz, 44.1
kHz, 6 channels, MP3, Opus, the AAC track of a video). Samples are read a hop at a time
and only the last window is held, so memory is bounded by one window for any length of
recording. Each window is handed to the model as a small WAV, the one input Infinity's CLAP
takes.
"""

from __future__ import annotations

import struct
import subprocess
import threading
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from msearch.errors import CorruptMedia, UnsupportedMedia
from msearch.media.ffprobe import ffprobe

Samples = npt.NDArray[np.float32]
_BYTES_PER_SAMPLE = 4
_WAVE_FORMAT_IEEE_FLOAT = 3
# Tags worth showing, in the order a listing would.
TAGS = ("title", "artist", "album", "album_artist", "genre", "date", "comment")
# A soundtrack window quieter than this (peak, full scale 1.0) is digital silence: a
# video's silent stretch says nothing to search for.
SILENCE_PEAK = 1e-4


@dataclass(frozen=True)
class SoundInfo:
    duration: float
    codec: str
    sample_rate: int
    channels: int
    tags: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "codec": self.codec,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "tags": dict(self.tags),
        }


@dataclass(frozen=True)
class SoundWindow:
    index: int
    start: float  # seconds into the recording
    end: float
    samples: Samples  # exactly one window long (a shorter recording repeated to fill it)

    @property
    def silent(self) -> bool:
        return float(np.abs(self.samples).max(initial=0.0)) < SILENCE_PEAK


def sound_of(data: dict[str, Any]) -> SoundInfo | None:
    """The first audio stream of an ffprobe report, or None when there is none."""
    streams = [s for s in data.get("streams", []) if s.get("codec_type") == "audio"]
    if not streams:
        return None
    stream = streams[0]
    container = data.get("format", {})
    duration = float(stream.get("duration") or container.get("duration") or 0)
    raw_tags = {**(container.get("tags") or {}), **(stream.get("tags") or {})}
    lowered = {str(k).lower(): str(v) for k, v in raw_tags.items()}
    return SoundInfo(
        duration=duration,
        codec=str(stream.get("codec_name") or "unknown"),
        sample_rate=int(stream.get("sample_rate") or 0),
        channels=int(stream.get("channels") or 0),
        tags={k: lowered[k][:200] for k in TAGS if lowered.get(k)},
    )


def probe_sound(path: Path, *, timeout: float = 60, pass_fds: tuple[int, ...] = ()) -> SoundInfo:
    """An audio file's facts; clear errors for files FFmpeg cannot read or without sound."""
    data = ffprobe(path, timeout=timeout, pass_fds=pass_fds)
    sound = sound_of(data)
    if sound is None:
        kinds = sorted({s.get("codec_type", "?") for s in data.get("streams", [])})
        raise UnsupportedMedia(f"no audio stream (streams: {', '.join(kinds) or 'none'})")
    if sound.codec == "unknown" or not sound.sample_rate:
        raise UnsupportedMedia(f"unsupported audio codec ({sound.codec})")
    return sound


def stream_windows(
    path: Path,
    *,
    rate: int,
    window_s: float,
    hop_s: float,
    pass_fds: tuple[int, ...] = (),
    stop: threading.Event | None = None,
    timeout_s: float = 3600,
) -> Generator[SoundWindow, None, None]:
    """Windows of ``window_s`` every ``hop_s`` seconds, mono at ``rate``. The last one ends
    with the recording (overlapping its predecessor more), so every second is heard (a tail
    under a second, or half a hop, is left to the window before); a
    recording shorter than a window is one window of it repeated (CLAP's own padding).
    Yields nothing for a stream with no samples; CorruptMedia when FFmpeg fails before the
    end."""
    window, hop = round(window_s * rate), max(1, round(hop_s * rate))
    buffer: Samples = np.empty(0, dtype=np.float32)
    offset = 0  # the recording's sample index of buffer[0]
    next_start = 0
    count = 0
    pending = b""
    with pcm_stream(
        path, rate=rate, sample_format="f32le", pass_fds=pass_fds, stop=stop, timeout_s=timeout_s
    ) as stream:
        while True:
            if stop is not None and stop.is_set():
                return
            chunk = stream.read(hop * _BYTES_PER_SAMPLE)
            if chunk:
                pending += chunk
                usable = len(pending) - len(pending) % _BYTES_PER_SAMPLE
                buffer = np.concatenate(
                    [buffer, np.frombuffer(pending[:usable], dtype="<f4").astype(np.float32)]
                )
                pending = pending[usable:]
            while offset + len(buffer) >= next_start + window:
                begin = next_start - offset
                yield SoundWindow(
                    count,
                    next_start / rate,
                    (next_start + window) / rate,
                    buffer[begin : begin + window].copy(),
                )
                count += 1
                next_start += hop
            # keep what the next window needs, and always the last window's worth (the
            # final window ends with the recording)
            keep_from = max(0, min(next_start - offset, len(buffer) - window))
            buffer, offset = buffer[keep_from:], offset + keep_from
            if not chunk:
                break
    total = offset + len(buffer)
    if count == 0 and total > 0:
        repeats = -(-window // total)
        yield SoundWindow(0, 0.0, total / rate, np.tile(buffer, repeats)[:window].copy())
    elif count and total - ((next_start - hop) + window) >= min(rate, hop // 2):
        # the tail past the last window (encoders pad a few ms: those are not worth one)
        yield SoundWindow(count, (total - window) / rate, total / rate, buffer[-window:].copy())


@contextmanager
def pcm_stream(
    path: Path,
    *,
    rate: int,
    sample_format: str,
    pass_fds: tuple[int, ...] = (),
    stop: threading.Event | None = None,
    timeout_s: float = 3600,
) -> Iterator[IO[bytes]]:
    """The first audio stream of ``path`` decoded by FFmpeg to raw mono samples at
    ``rate`` (``sample_format``: ``f32le``, ``s16le``), read from a pipe as it decodes.
    When the reader has read it all, CorruptMedia if FFmpeg failed on the way; FFmpeg is
    killed after ``timeout_s`` and whenever the reader leaves early."""
    command = [
        "ffmpeg",
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "error",
        # one decoding thread: the models need the cores more than the decoder does
        "-threads",
        "1",
        "-i",
        str(path),
        "-map",
        "0:a:0",
        "-vn",
        "-sn",
        "-dn",
        "-ac",
        "1",
        "-ar",
        str(rate),
        "-f",
        sample_format,
        "pipe:1",
    ]
    try:
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            pass_fds=pass_fds,
        )
    except FileNotFoundError as exc:
        raise UnsupportedMedia("ffmpeg is not installed") from exc
    assert proc.stdout is not None and proc.stderr is not None
    errors: list[bytes] = []
    # stderr drained aside: a chatty decoder must not block on a full pipe
    drain = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
    drain.start()
    timer = threading.Timer(timeout_s, proc.kill)
    timer.start()
    try:
        yield proc.stdout
        if stop is not None and stop.is_set():
            return  # left early on purpose: FFmpeg is stopped below
        code = proc.wait()
        drain.join(timeout=5)
        if code != 0:
            detail = b"".join(errors).decode(errors="replace").strip().splitlines()
            message = detail[-1][-300:] if detail else f"exit code {code}"
            raise CorruptMedia(f"ffmpeg could not decode the sound: {message}")
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()


def wav_bytes(samples: Samples, rate: int) -> bytes:
    """A 32-bit float WAV of ``samples`` (mono, or frames × channels): what Infinity's
    CLAP reads. The 44-byte header is written here: libsndfile wrote the same through
    Python callbacks that held the interpreter lock for a millisecond a window, beside the
    model's forward pass."""
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    data = np.ascontiguousarray(samples, dtype="<f4").tobytes()
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(data),
        b"WAVE",
        b"fmt ",
        16,
        _WAVE_FORMAT_IEEE_FLOAT,
        channels,
        rate,
        rate * channels * _BYTES_PER_SAMPLE,
        channels * _BYTES_PER_SAMPLE,  # block align
        8 * _BYTES_PER_SAMPLE,
        b"data",
        len(data),
    )
    return header + data
