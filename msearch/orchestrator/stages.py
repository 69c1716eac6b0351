"""The pipeline's stages. Each does one thing; the orchestrator runs them in order.

A stage's ``applies`` says whether it has work for this file, ``run`` does it (raising an
MSearchError on bad input) and ``cleanup`` frees what it held, success or not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from concurrent.futures import Executor
from pathlib import Path
from typing import Protocol

from msearch.config import PerformanceSettings
from msearch.embedding.base import EmbeddingEngine
from msearch.errors import EmptyFile, FileUnreadable, UnsupportedMedia, UnsupportedType
from msearch.media.detect import MediaType, detect_file
from msearch.media.enhance import ImageEnhancer
from msearch.media.fingerprint import content_fingerprint
from msearch.media.images import DecodedImage, decode_image, write_thumbnail
from msearch.media.originals import RootsProvider, open_original
from msearch.orchestrator.context import ProcessingContext
from msearch.orchestrator.progress import Step
from msearch.store.adapter import UnifiedDatabaseAdapter
from msearch.store.records import FileStatus


class Stage(Protocol):
    step: Step

    def applies(self, ctx: ProcessingContext) -> bool: ...

    async def run(self, ctx: ProcessingContext) -> None: ...

    def cleanup(self, ctx: ProcessingContext) -> None: ...


def _unchanged(ctx: ProcessingContext, size: int, mtime: float, model: str | None) -> bool:
    prev = ctx.previous
    return (
        prev is not None
        and prev.status == FileStatus.INDEXED
        and prev.model == model
        and prev.size == size
        and prev.mtime == mtime
    )


class Preflight:
    """Is the file there, a regular non-empty file reached through no link (inside the
    allowed roots, when there are some), media we know, and changed at all? Opens the
    original that the later stages read."""

    step = Step.PREFLIGHT

    def __init__(
        self,
        adapter: UnifiedDatabaseAdapter,
        executor: Executor,
        roots: RootsProvider | None = None,
        extensions: Iterable[str] | None = None,
    ) -> None:
        self._adapter = adapter
        self._executor = executor
        self._roots = roots
        self._extensions = {e.lower() for e in extensions} if extensions is not None else None

    def applies(self, ctx: ProcessingContext) -> bool:
        return True

    async def run(self, ctx: ProcessingContext) -> None:
        loop = asyncio.get_running_loop()
        roots = self._roots() if self._roots is not None else None
        original = await loop.run_in_executor(self._executor, open_original, ctx.path, roots)
        ctx.original = original
        record = ctx.record
        record.size, record.mtime = original.size, original.mtime
        suffix = ctx.path.suffix.lower()
        if self._extensions is not None and suffix not in self._extensions:
            kind = f"{suffix} files are" if suffix else "a file without an extension is"
            raise UnsupportedType(
                f"{kind} not media msearch indexes (file_monitoring.file_extensions)"
            )
        if original.size == 0:
            raise EmptyFile("the file is empty (0 bytes)")
        if _unchanged(ctx, original.size, original.mtime, self._adapter.model_id):
            ctx.skipped = True
            return
        try:
            detected = await loop.run_in_executor(self._executor, detect_file, original.reopen_path)
            if detected is None:
                raise UnsupportedMedia(
                    "not an image or video format msearch recognises "
                    "(content checked, not the extension)"
                )
            fingerprint = await loop.run_in_executor(
                self._executor, content_fingerprint, original.reopen_path
            )
        except OSError as exc:
            raise FileUnreadable(f"cannot read file: {exc}") from exc
        prev = ctx.previous
        if (
            prev is not None
            and prev.status == FileStatus.INDEXED
            and prev.model == self._adapter.model_id
            and prev.fingerprint == fingerprint
        ):
            ctx.skipped = True  # touched, not changed: keep the vectors
            return
        record.fingerprint = fingerprint
        record.enhanced, record.enhancement = False, None  # the enhance stage says again
        ctx.detected = detected
        record.media_type, record.mime = str(detected.media_type), detected.mime

    def cleanup(self, ctx: ProcessingContext) -> None:
        if ctx.original is not None:
            ctx.original.close()
            ctx.original = None


class DecodeImage:
    """Decode to RGB (orientation, mode, size limits), note EXIF, write the thumbnail."""

    step = Step.DECODE

    def __init__(
        self,
        adapter: UnifiedDatabaseAdapter,
        engine: EmbeddingEngine,
        settings: PerformanceSettings,
        executor: Executor,
    ) -> None:
        self._adapter = adapter
        self._engine = engine
        self._settings = settings
        self._executor = executor

    def applies(self, ctx: ProcessingContext) -> bool:
        return ctx.detected is not None and ctx.detected.media_type == MediaType.IMAGE

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
        ctx.images = [decoded.image]

    def _decode(self, path: Path, thumb: Path) -> DecodedImage:
        decoded = decode_image(
            path,
            max_pixels=self._settings.max_image_pixels,
            min_short=self._engine.input_size,
            min_long=self._settings.thumbnail_size,
        )
        write_thumbnail(decoded.image, thumb, self._settings.thumbnail_size)
        return decoded

    def cleanup(self, ctx: ProcessingContext) -> None:
        for image in ctx.images:
            image.close()
        ctx.images = []


class Enhance:
    """Real-ESRGAN (and GFPGAN) on an image too small to embed well; the original file
    is untouched, the enhanced copy goes to the cache, and the record says what was done
    (or why it could not be)."""

    step = Step.ENHANCE

    def __init__(self, adapter: UnifiedDatabaseAdapter, enhancer: ImageEnhancer | None) -> None:
        self._adapter = adapter
        self._enhancer = enhancer

    def applies(self, ctx: ProcessingContext) -> bool:
        record = ctx.record
        return (
            self._enhancer is not None
            and len(ctx.images) == 1
            and self._enhancer.wants(record.width, record.height)
        )

    async def run(self, ctx: ProcessingContext) -> None:
        assert self._enhancer is not None
        original = ctx.images[0]
        image, done = await self._enhancer.enhance(
            original, save_to=self._adapter.enhanced_path(ctx.record.id)
        )
        if image is not original:
            original.close()
            ctx.images = [image]
        ctx.record.enhanced, ctx.record.enhancement = done.applied, done.as_dict()

    def cleanup(self, ctx: ProcessingContext) -> None:
        return None


class Embed:
    step = Step.EMBED

    def __init__(self, engine: EmbeddingEngine) -> None:
        self._engine = engine

    def applies(self, ctx: ProcessingContext) -> bool:
        return bool(ctx.images)

    async def run(self, ctx: ProcessingContext) -> None:
        ctx.vectors = await self._engine.embed_images(ctx.images)

    def cleanup(self, ctx: ProcessingContext) -> None:
        return None


class Persist:
    step = Step.PERSIST

    def __init__(self, adapter: UnifiedDatabaseAdapter) -> None:
        self._adapter = adapter

    def applies(self, ctx: ProcessingContext) -> bool:
        return bool(ctx.vectors)

    async def run(self, ctx: ProcessingContext) -> None:
        previous = ctx.previous.scenes if ctx.previous else []
        await self._adapter.commit_indexed(
            ctx.record, ctx.vectors, ctx.scenes, previous_points=max(1, len(previous))
        )

    def cleanup(self, ctx: ProcessingContext) -> None:
        return None
