"""The video stage: probe, then scenes and keyframes streamed from FFmpeg to the embedder."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Executor
from concurrent.futures import TimeoutError as FutureTimeout
from functools import partial
from pathlib import Path

from PIL import Image

from msearch.config import PerformanceSettings
from msearch.embedding.base import EmbeddingEngine
from msearch.errors import CorruptMedia
from msearch.media.detect import MediaType
from msearch.media.enhance import ImageEnhancer
from msearch.media.images import write_thumbnail
from msearch.media.video import FFmpegSceneDetector, Keyframe, probe
from msearch.orchestrator.context import ProcessingContext
from msearch.orchestrator.progress import STEP_FRACTION, ProgressSink, Step
from msearch.store.adapter import UnifiedDatabaseAdapter

_DONE = object()


class VideoScenes:
    """One vector per scene. Keyframes flow from the decoding thread through a small queue
    and are embedded in batches, so a long video never sits in memory."""

    step = Step.DECODE

    def __init__(
        self,
        adapter: UnifiedDatabaseAdapter,
        engine: EmbeddingEngine,
        detector: FFmpegSceneDetector,
        settings: PerformanceSettings,
        progress: ProgressSink,
        batch_size: int,
        executor: Executor,
        enhancer: ImageEnhancer | None = None,
    ) -> None:
        self._adapter = adapter
        # Decoding threads of their own (a video holds one for its whole decode), so
        # videos neither take the threads searches need nor exceed the configured bound.
        self._executor = executor
        self._enhancer = enhancer
        self._engine = engine
        self._detector = detector
        self._settings = settings
        self._progress = progress
        self._batch = batch_size

    def applies(self, ctx: ProcessingContext) -> bool:
        return ctx.detected is not None and ctx.detected.media_type == MediaType.VIDEO

    async def run(self, ctx: ProcessingContext) -> None:
        original = ctx.opened()
        source, fds = original.reopen_path, (original.fd,)
        loop = asyncio.get_running_loop()
        info = await loop.run_in_executor(self._executor, partial(probe, source, pass_fds=fds))
        record = ctx.record
        record.duration, record.width, record.height = info.duration, info.width, info.height
        record.taken_at, record.camera = info.created, None
        queue: asyncio.Queue[object] = asyncio.Queue(maxsize=self._batch * 2)
        stop = threading.Event()
        decode_share = STEP_FRACTION[Step.EMBED] - STEP_FRACTION[Step.DECODE]

        def report(fraction: float) -> None:
            asyncio.run_coroutine_threadsafe(
                self._progress.advance(
                    record.id, STEP_FRACTION[Step.DECODE] + decode_share * fraction
                ),
                loop,
            )

        def put(item: object) -> bool:
            future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
            while True:  # back-pressure, but never block a cancelled run forever
                try:
                    future.result(timeout=0.5)
                    return True
                except FutureTimeout:
                    if stop.is_set():
                        future.cancel()
                        return False

        def produce() -> None:
            try:
                # keyframes serve the model and the scene thumbnails
                min_short = max(self._engine.input_size, self._settings.thumbnail_size)
                for keyframe in self._detector.scenes(
                    source, info, min_short=min_short, progress=report, pass_fds=fds
                ):
                    self._thumbnail(record.id, keyframe)
                    if not put(keyframe):
                        return
                put(_DONE)
            except BaseException as exc:  # handed to the event loop, raised there
                put(exc)

        producer = loop.run_in_executor(self._executor, produce)
        try:
            await self._consume(ctx, queue)
        finally:
            stop.set()
            await producer
        if not ctx.vectors:
            raise CorruptMedia("no frame of the video could be decoded")

    async def _consume(self, ctx: ProcessingContext, queue: asyncio.Queue[object]) -> None:
        batch: list[Keyframe] = []
        while True:
            item = await queue.get()
            if isinstance(item, BaseException):
                raise item
            if item is not _DONE:
                assert isinstance(item, Keyframe)
                batch.append(item)
            if batch and (len(batch) >= self._batch or item is _DONE):
                images = [await self._enhanced(ctx, k) for k in batch]
                ctx.vectors.extend(await self._engine.embed_images(images))
                ctx.scenes.extend(k.scene for k in batch)
                batch = []
            if item is _DONE:
                return

    async def _enhanced(self, ctx: ProcessingContext, keyframe: Keyframe) -> Image.Image:
        """A small video's keyframes go through the enhancement stage; the record sums up
        what was done to them."""
        record = ctx.record
        if self._enhancer is None or not self._enhancer.wants(record.width, record.height):
            return keyframe.image
        image, done = await self._enhancer.enhance(
            keyframe.image, save_to=self._adapter.enhanced_path(record.id, keyframe.scene.index)
        )
        summary = record.enhancement or {
            "applied": False,
            "steps": [],
            "seconds": 0.0,
            "reason": None,
            "frames": 0,
            "frames_enhanced": 0,
        }
        summary["frames"] += 1
        summary["seconds"] = round(summary["seconds"] + done.seconds, 3)
        if done.applied:
            summary["applied"] = True
            summary["frames_enhanced"] += 1
            summary["steps"] = sorted(set(summary["steps"]) | set(done.steps))
        elif summary["reason"] is None:
            summary["reason"] = done.reason
        record.enhancement, record.enhanced = summary, bool(summary["applied"])
        return image

    def _thumbnail(self, file_id: str, keyframe: Keyframe) -> None:
        dest: Path = self._adapter.thumbnail_path(file_id, keyframe.scene.index)
        write_thumbnail(keyframe.image, dest, self._settings.thumbnail_size)

    def cleanup(self, ctx: ProcessingContext) -> None:
        return None
