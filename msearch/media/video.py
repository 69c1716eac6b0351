"""Video: ffprobe metadata, and scene detection with keyframes in one FFmpeg decoding pass.

The filter graph splits the decoded frames in two: one branch is shrunk (bilinear,
96 px wide) for FFmpeg's ``scene`` score and reports cuts on stderr; the other is
sampled at a few frames per second *before* being scaled to the model's size and is read
from stdout. Scenes are closed as cuts become certain, so only the frames of the current
scene are held: memory stays bounded for any length of video.
"""

from __future__ import annotations

import queue
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from msearch.config import VideoSettings
from msearch.errors import CorruptMedia, UnsupportedMedia
from msearch.media.audio import SoundInfo, sound_of
from msearch.media.ffprobe import ffprobe
from msearch.store.records import SceneRecord

_SHOWINFO_TIME = re.compile(r"pts_time:\s*([0-9.]+)")
# A cut is final once frames this far (seconds of video) past it have been read: the
# stderr line reporting it is written before the sampled frame after it reaches stdout.
_CUT_MARGIN_S = 2.0
_DETECT_WIDTH = 96


@dataclass(frozen=True)
class VideoInfo:
    duration: float
    fps: float
    width: int  # as displayed, after rotation
    height: int
    codec: str
    rotation: int
    created: str | None = None  # the container's creation_time, ISO 8601
    sound: SoundInfo | None = None  # its first audio stream, if any


@dataclass
class Keyframe:
    scene: SceneRecord
    image: Image.Image


def _rotation(stream: dict[str, Any]) -> int:
    for side in stream.get("side_data_list", []) or []:
        if "rotation" in side:
            return int(float(side["rotation"])) % 360
    rotate = (stream.get("tags") or {}).get("rotate")
    return int(rotate) % 360 if rotate else 0


def _rate(value: str | None) -> float:
    if not value or value in ("0/0", "0"):
        return 0.0
    num, _, den = value.partition("/")
    return float(num) / float(den or 1) if float(den or 1) else 0.0


def probe(path: Path, *, timeout: float = 60, pass_fds: tuple[int, ...] = ()) -> VideoInfo:
    """Duration, frame rate, displayed size, codec and rotation; clear errors for files
    FFmpeg cannot read, files without a video stream and codecs it cannot decode.
    ``pass_fds`` hands ffprobe the descriptors a ``/proc/self/fd`` path names."""
    data = ffprobe(path, timeout=timeout, pass_fds=pass_fds)
    videos = [
        s
        for s in data.get("streams", [])
        if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
    ]
    if not videos:
        kinds = sorted({s.get("codec_type", "?") for s in data.get("streams", [])})
        raise UnsupportedMedia(f"no video stream (streams: {', '.join(kinds) or 'none'})")
    stream = videos[0]
    codec = str(stream.get("codec_name") or "unknown")
    if codec == "unknown" or not stream.get("width"):
        raise UnsupportedMedia(f"unsupported video codec ({codec})")
    duration = float(stream.get("duration") or data.get("format", {}).get("duration") or 0)
    if duration <= 0:
        raise CorruptMedia("the video has no duration (truncated or still being written?)")
    width, height = int(stream["width"]), int(stream["height"])
    rotation = _rotation(stream)
    if rotation in (90, 270):
        width, height = height, width
    fps = _rate(stream.get("avg_frame_rate")) or _rate(stream.get("r_frame_rate"))
    tags = {**(data.get("format", {}).get("tags") or {}), **(stream.get("tags") or {})}
    created = tags.get("creation_time")
    return VideoInfo(
        duration,
        fps,
        width,
        height,
        codec,
        rotation,
        created.replace("Z", "+00:00") if isinstance(created, str) else None,
        sound_of(data),
    )


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


class FFmpegSceneDetector:
    """Scenes and their keyframes, streamed, from one decoding pass."""

    def __init__(
        self, settings: VideoSettings, *, sample_fps: float = 2.0, timeout_s: float = 3600
    ) -> None:
        self._settings = settings
        self._sample_fps = sample_fps
        self._timeout = timeout_s

    def _command(self, path: Path, info: VideoInfo, out_w: int, out_h: int) -> list[str]:
        detect_h = _even(_DETECT_WIDTH * info.height / info.width)
        graph = (
            f"[0:v]split=2[d][k];"
            f"[d]scale={_DETECT_WIDTH}:{detect_h}:flags=bilinear,"
            f"select='gt(scene,{self._settings.scene_threshold})',showinfo,nullsink;"
            f"[k]fps={self._sample_fps},scale={out_w}:{out_h}:flags=bicubic,"
            f"format=rgb24[out]"
        )
        # Decode less: non-reference frames (B-frames) are skipped, since encoders put
        # I/P frames at cuts, and deblocking is skipped, invisible at 96 px and in the
        # embedder's input. A cut is still placed within a frame or two.
        return [
            "ffmpeg",
            "-hide_banner",
            "-nostdin",
            "-nostats",
            "-loglevel",
            "info",
            "-skip_frame",
            "noref",
            "-skip_loop_filter",
            "all",
            "-i",
            str(path),
            "-an",
            "-sn",
            "-dn",
            "-filter_complex",
            graph,
            "-map",
            "[out]",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "pipe:1",
        ]

    def scenes(
        self,
        path: Path,
        info: VideoInfo,
        *,
        min_short: int,
        progress: Callable[[float], None] | None = None,
        pass_fds: tuple[int, ...] = (),
    ) -> Iterator[Keyframe]:
        """Yield each scene with its keyframe (mid-scene) as soon as the scene is certain."""
        scale = min_short / min(info.width, info.height)
        out_w, out_h = _even(info.width * min(1.0, scale)), _even(info.height * min(1.0, scale))
        frame_bytes = out_w * out_h * 3
        proc = subprocess.Popen(
            self._command(path, info, out_w, out_h),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=pass_fds,
        )
        cuts: queue.Queue[float] = queue.Queue()
        errors: list[str] = []

        def read_stderr() -> None:
            assert proc.stderr is not None
            for raw in proc.stderr:
                line = raw.decode(errors="replace")
                if "Parsed_showinfo" in line and (match := _SHOWINFO_TIME.search(line)):
                    cuts.put(float(match.group(1)))
                elif "rror" in line or "nvalid" in line:
                    errors.append(line.strip())

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        assembler = _SceneAssembler(self._settings, info.duration)
        try:
            assert proc.stdout is not None
            index = 0
            while chunk := proc.stdout.read(frame_bytes):
                if len(chunk) < frame_bytes:
                    break
                t = index / self._sample_fps
                index += 1
                while not cuts.empty():
                    assembler.add_cut(cuts.get_nowait())
                image = Image.frombytes("RGB", (out_w, out_h), chunk)
                yield from assembler.add_frame(t, image)
                if progress is not None and index % 8 == 0:
                    progress(min(1.0, t / info.duration))
            proc.wait(timeout=self._timeout)
            reader.join(timeout=10)
            if proc.returncode != 0 or index == 0:
                detail = errors[-1][-300:] if errors else f"exit code {proc.returncode}"
                if any("not found" in e.lower() or "unsupported" in e.lower() for e in errors):
                    raise UnsupportedMedia(f"ffmpeg cannot decode this video: {detail}")
                raise CorruptMedia(f"ffmpeg could not decode the video: {detail}")
            while not cuts.empty():
                assembler.add_cut(cuts.get_nowait())
            yield from assembler.finish()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


class _SceneAssembler:
    """Turns a stream of cuts and sampled frames into scenes: short scenes are merged into
    their neighbour, long ones split at ``max_scene_seconds``, one keyframe per scene at
    its middle. Holds only the current scene's frames and one finished scene."""

    def __init__(self, settings: VideoSettings, duration: float) -> None:
        self._min = settings.min_scene_seconds
        self._max = settings.max_scene_seconds
        self._duration = duration
        self._cuts: list[float] = []
        self._start = 0.0
        self._frames: list[tuple[float, Image.Image]] = []
        self._held: Keyframe | None = None
        self._index = 0

    def add_cut(self, t: float) -> None:
        if t > 0 and (not self._cuts or t > self._cuts[-1]):
            self._cuts.append(t)

    def _keyframe(self, start: float, end: float) -> tuple[float, Image.Image]:
        """The sampled frame nearest the middle of [start, end)."""
        middle = (start + end) / 2
        candidates = [f for f in self._frames if start <= f[0] < end] or self._frames
        return min(candidates, key=lambda f: abs(f[0] - middle))

    def _close(self, end: float) -> Iterator[Keyframe]:
        if not self._frames:
            return
        at, image = self._keyframe(self._start, end)
        scene = Keyframe(
            SceneRecord(self._index, round(self._start, 3), round(end, 3), round(at, 3)), image
        )
        self._index += 1
        self._frames = [f for f in self._frames if f[0] >= end]
        self._start = end
        if self._held is not None:
            yield self._held
        self._held = scene

    def add_frame(self, t: float, image: Image.Image) -> Iterator[Keyframe]:
        while self._cuts and self._cuts[0] <= t - _CUT_MARGIN_S:
            cut = self._cuts.pop(0)
            if cut - self._start >= self._min:
                yield from self._close(cut)
        if t - self._start >= self._max + _CUT_MARGIN_S and not (
            self._cuts and self._cuts[0] < self._start + self._max + self._min
        ):
            yield from self._close(self._start + self._max)
        self._frames.append((t, image))

    def finish(self) -> Iterator[Keyframe]:
        for cut in self._cuts:
            if cut - self._start >= self._min and self._duration - cut >= self._min:
                yield from self._close(cut)
        self._cuts = []
        while self._duration - self._start > self._max + self._min:
            yield from self._close(self._start + self._max)
        tail = self._duration - self._start
        if self._held is not None and tail < self._min and self._frames:
            # a short last scene joins the previous one
            held = self._held
            held.scene.end = round(self._duration, 3)
            self._held = None
            yield held
            return
        if self._frames:
            yield from self._close(self._duration)
        if self._held is not None:
            yield self._held
            self._held = None
