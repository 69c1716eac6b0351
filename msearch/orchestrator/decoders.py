"""Decoders: the first stage of each media type's pipeline. Each reads the original,
fills in the record's media facts and sets the file's lazy stream of frames, which the
shared stages (enhance, embed, persist) carry on from."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Generator
from concurrent.futures import Executor
from contextlib import aclosing
from functools import partial
from pathlib import Path

from msearch.config import DocumentSettings, PerformanceSettings
from msearch.errors import CorruptMedia
from msearch.media.audio import SoundInfo, probe_sound
from msearch.media.documents import Page, probe_document, read_pages
from msearch.media.images import DecodedImage, decode_image, write_thumbnail
from msearch.media.sound_headers import read_sound_header
from msearch.media.video import FFmpegSceneDetector, Keyframe, VideoInfo, probe
from msearch.orchestrator.context import Frame, ProcessingContext
from msearch.orchestrator.progress import STEP_FRACTION, ProgressSink, Step
from msearch.orchestrator.threaded import threaded
from msearch.store.adapter import PAGE, UnifiedDatabaseAdapter
from msearch.store.records import Passage, SceneRecord


class DecodeImage:
    """Decode to RGB (orientation, mode, size limits), note EXIF, write the thumbnail."""

    step = Step.DECODE

    def __init__(
        self,
        adapter: UnifiedDatabaseAdapter,
        model_side: int,
        settings: PerformanceSettings,
        executor: Executor,
    ) -> None:
        self._adapter = adapter
        self._model_side = model_side  # the side the models look at: no need to decode more
        self._settings = settings
        self._executor = executor

    def applies(self, ctx: ProcessingContext) -> bool:
        return True

    async def run(self, ctx: ProcessingContext) -> None:
        loop = asyncio.get_running_loop()
        thumb = self._adapter.thumbnail_path(ctx.record.id)
        decoded = await loop.run_in_executor(
            self._executor, self._decode, ctx.opened().reopen_path, thumb
        )
        record = ctx.record
        record.width, record.height = decoded.width, decoded.height
        record.taken_at = decoded.taken_at.isoformat() if decoded.taken_at else None
        record.camera = decoded.camera
        record.duration = None
        ctx.frames = _one(Frame(decoded.image))

    def _decode(self, path: Path, thumb: Path) -> DecodedImage:
        decoded = decode_image(
            path,
            max_pixels=self._settings.max_image_pixels,
            min_short=self._model_side,
            min_long=self._settings.thumbnail_size,
        )
        write_thumbnail(decoded.image, thumb, self._settings.thumbnail_size)
        return decoded

    def cleanup(self, ctx: ProcessingContext) -> None:
        return None


async def _one(frame: Frame) -> AsyncGenerator[Frame, None]:
    yield frame


class DecodeVideo:
    """Probe, then one frame per scene: keyframes flow from FFmpeg's decoding thread
    through a small queue as the embed stage pulls them, so a long video never sits in
    memory. The scene thumbnails are written on the way."""

    step = Step.DECODE

    def __init__(
        self,
        adapter: UnifiedDatabaseAdapter,
        model_side: int,
        detector: FFmpegSceneDetector,
        settings: PerformanceSettings,
        progress: ProgressSink,
        executor: Executor,
        queue_size: int,
    ) -> None:
        self._adapter = adapter
        # Decoding threads of their own (a video holds one for its whole decode), so
        # videos neither take the threads searches need nor exceed the configured bound.
        self._executor = executor
        self._model_side = model_side
        self._detector = detector
        self._settings = settings
        self._progress = progress
        self._queue_size = queue_size

    def applies(self, ctx: ProcessingContext) -> bool:
        return True

    async def run(self, ctx: ProcessingContext) -> None:
        original = ctx.opened()
        loop = asyncio.get_running_loop()
        info = await loop.run_in_executor(
            self._executor, partial(probe, original.reopen_path, pass_fds=(original.fd,))
        )
        record = ctx.record
        record.duration, record.width, record.height = info.duration, info.width, info.height
        record.taken_at, record.camera = info.created, None
        record.audio = info.sound.as_dict() if info.sound else None
        ctx.frames = self._frames(ctx, info)

    async def _frames(self, ctx: ProcessingContext, info: VideoInfo) -> AsyncGenerator[Frame, None]:
        original = ctx.opened()
        source, fds = original.reopen_path, (original.fd,)
        record = ctx.record
        loop = asyncio.get_running_loop()
        # The frames are pulled by the embed stage: decoding is most of that step's time.
        start = STEP_FRACTION[Step.EMBED]
        share = STEP_FRACTION[Step.PERSIST] - start

        def report(fraction: float) -> None:
            asyncio.run_coroutine_threadsafe(
                self._progress.advance(record.id, start + share * fraction), loop
            )

        def keyframes(stop: threading.Event) -> Generator[Keyframe, None, None]:
            # keyframes serve the model and the scene thumbnails
            min_short = max(self._model_side, self._settings.thumbnail_size)
            for keyframe in self._detector.scenes(
                source, info, min_short=min_short, progress=report, pass_fds=fds
            ):
                self._thumbnail(record.id, keyframe)
                yield keyframe

        frames = 0
        async with aclosing(threaded(self._executor, keyframes, self._queue_size)) as decoded:
            async for keyframe in decoded:
                frames += 1
                yield Frame(keyframe.image, keyframe.scene)
        if not frames:
            raise CorruptMedia("no frame of the video could be decoded")

    def _thumbnail(self, file_id: str, keyframe: Keyframe) -> None:
        dest: Path = self._adapter.thumbnail_path(file_id, keyframe.scene.index)
        write_thumbnail(keyframe.image, dest, self._settings.thumbnail_size)

    def cleanup(self, ctx: ProcessingContext) -> None:
        return None


def _probe_sound(path: Path, fd: int) -> SoundInfo:
    """A WAV's or FLAC's header read here (no process to start), anything else ffprobed."""
    return read_sound_header(path) or probe_sound(path, pass_fds=(fd,))


class DecodeAudio:
    """Probe the sound (codec, rate, channels, tags); its windows are decoded as the sound
    stage embeds them. An audio file has no picture and no thumbnail."""

    step = Step.DECODE

    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    def applies(self, ctx: ProcessingContext) -> bool:
        return True

    async def run(self, ctx: ProcessingContext) -> None:
        original = ctx.opened()
        loop = asyncio.get_running_loop()
        sound = await loop.run_in_executor(
            self._executor, partial(_probe_sound, original.reopen_path, original.fd)
        )
        record = ctx.record
        record.duration = sound.duration or None
        record.width = record.height = None
        record.taken_at = record.camera = None
        record.audio = sound.as_dict()

    def cleanup(self, ctx: ProcessingContext) -> None:
        return None


class DecodeDocument:
    """A PDF's pages in order, as the embed stage pulls them: each rendered (its thumbnail
    written on the way) and marked whole (no model may crop it), and its text layer kept
    as the page's passage (found by its words). At most
    ``documents.max_pages`` pages; a page that cannot be read ends the document there."""

    step = Step.DECODE

    def __init__(
        self,
        adapter: UnifiedDatabaseAdapter,
        model_side: int,
        settings: PerformanceSettings,
        documents: DocumentSettings,
        progress: ProgressSink,
        executor: Executor,
        queue_size: int,
    ) -> None:
        self._adapter = adapter
        self._model_side = model_side
        self._settings = settings
        self._documents = documents
        self._progress = progress
        self._executor = executor
        self._queue_size = queue_size

    def applies(self, ctx: ProcessingContext) -> bool:
        return True

    async def run(self, ctx: ProcessingContext) -> None:
        original = ctx.opened()
        loop = asyncio.get_running_loop()
        info = await loop.run_in_executor(self._executor, probe_document, original.reopen_path)
        record = ctx.record
        record.width, record.height = round(info.width), round(info.height)
        record.duration = record.taken_at = record.camera = None
        count = min(info.pages, self._documents.max_pages)
        record.document = {**info.as_dict(), "indexed_pages": count, "partial": None}
        if count < info.pages:
            record.document["partial"] = (
                f"only the first {count} of {info.pages} pages are indexed (documents.max_pages)"
            )
        ctx.frames = self._frames(ctx, count)

    async def _frames(self, ctx: ProcessingContext, count: int) -> AsyncGenerator[Frame, None]:
        source = ctx.opened().reopen_path
        record = ctx.record
        document = record.document or {}
        start = STEP_FRACTION[Step.EMBED]
        share = STEP_FRACTION[Step.PERSIST] - start

        def pages(stop: threading.Event) -> Generator[Page, None, None]:
            # rendered for the models and the thumbnails alike
            min_short = max(self._model_side, self._settings.thumbnail_size)
            done = 0
            try:
                for page in read_pages(source, count=count, min_short=min_short):
                    write_thumbnail(
                        page.image,
                        self._adapter.thumbnail_path(record.id, page.index),
                        self._settings.thumbnail_size,
                    )
                    done += 1
                    yield page
            except CorruptMedia as exc:
                if not done:
                    raise
                # the pages before it are worth finding
                document["indexed_pages"] = done
                document["partial"] = f"{exc.message}; the {done} pages before it are indexed"

        async with aclosing(threaded(self._executor, pages, self._queue_size)) as read:
            async for page in read:
                if page.text:
                    ctx.passages.append(
                        Passage(PAGE, page.index, page.number, page.number, page.text)
                    )
                await self._progress.advance(record.id, start + share * page.number / count)
                yield Frame(page.image, SceneRecord(page.index, 0.0, 0.0, 0.0), whole=True)
        document["pages_with_text"] = sum(1 for p in ctx.passages if p.kind == PAGE)

    def cleanup(self, ctx: ProcessingContext) -> None:
        return None
