"""The stages every media type shares: Preflight before its decoder, then enhance, embed
and persist after it (``pipelines.py`` puts them in order). Each does one thing.

A stage's ``applies`` says whether it has work for this file, ``run`` does it (raising an
MSearchError on bad input) and ``cleanup`` frees what it held, success or not.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from concurrent.futures import Executor
from contextlib import aclosing
from functools import partial
from typing import Any, Protocol

from PIL import Image

from msearch.embedding.base import EmbeddingEngine, PageTokens, is_multivector
from msearch.errors import EmptyFile, FileUnreadable, UnsupportedMedia, UnsupportedType
from msearch.media.detect import detect_file, settle_container
from msearch.media.enhance import Enhancement, ImageEnhancer
from msearch.media.fingerprint import content_fingerprint
from msearch.media.images import square
from msearch.media.originals import RootsProvider, open_original
from msearch.orchestrator.context import Frame, ProcessingContext
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
        model_for: Callable[[str | None], str | None] | None = None,
    ) -> None:
        self._adapter = adapter
        # what a file of a media type is embedded with now (its engines' models)
        self._model_for = model_for or (lambda _: adapter.model_id)
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
        previous_type = ctx.previous.media_type if ctx.previous else None
        if _unchanged(ctx, original.size, original.mtime, self._model_for(previous_type)):
            ctx.skipped = True
            return
        try:
            detected = await loop.run_in_executor(self._executor, detect_file, original.reopen_path)
            if detected is None:
                raise UnsupportedMedia(
                    "not an image, video, sound or PDF format msearch recognises "
                    "(content checked, not the extension)"
                )
            detected = await loop.run_in_executor(
                self._executor,
                partial(settle_container, detected, original.reopen_path, pass_fds=(original.fd,)),
            )
            fingerprint = await loop.run_in_executor(
                self._executor, content_fingerprint, original.reopen_path
            )
        except OSError as exc:
            raise FileUnreadable(f"cannot read file: {exc}") from exc
        prev = ctx.previous
        ctx.model = self._model_for(str(detected.media_type))
        if (
            prev is not None
            and prev.status == FileStatus.INDEXED
            and prev.model == ctx.model
            and prev.fingerprint == fingerprint
        ):
            ctx.skipped = True  # touched, not changed: keep the vectors
            return
        record.fingerprint = fingerprint
        record.enhanced, record.enhancement = False, None  # the enhance stage says again
        record.audio = record.document = None  # and the decoder of what the file is now
        ctx.detected = detected
        record.media_type, record.mime = str(detected.media_type), detected.mime

    def cleanup(self, ctx: ProcessingContext) -> None:
        if ctx.original is not None:
            ctx.original.close()
            ctx.original = None


class Enhance:
    """Real-ESRGAN (and GFPGAN) on pictures too small to embed well: an image, or each
    keyframe of a small video. The original file is untouched, enhanced copies go to the
    cache, and the record says what was done (or why it could not be)."""

    step = Step.ENHANCE

    def __init__(self, adapter: UnifiedDatabaseAdapter, enhancer: ImageEnhancer | None) -> None:
        self._adapter = adapter
        self._enhancer = enhancer

    def applies(self, ctx: ProcessingContext) -> bool:
        record = ctx.record
        return (
            self._enhancer is not None
            and ctx.frames is not None
            and self._enhancer.wants(record.width, record.height)
        )

    async def run(self, ctx: ProcessingContext) -> None:
        assert ctx.frames is not None
        ctx.frames = self._enhanced(ctx, ctx.frames)

    async def _enhanced(
        self, ctx: ProcessingContext, frames: AsyncGenerator[Frame, None]
    ) -> AsyncGenerator[Frame, None]:
        assert self._enhancer is not None
        record = ctx.record
        async with aclosing(frames):
            async for frame in frames:
                scene_index = frame.scene.index if frame.scene is not None else None
                image, done = await self._enhancer.enhance(
                    frame.image, save_to=self._adapter.enhanced_path(record.id, scene_index)
                )
                if image is not frame.image:
                    frame.image.close()
                if frame.scene is None:
                    record.enhancement = done.as_dict()
                else:
                    record.enhancement = _sum_up(record.enhancement, done)
                record.enhanced = bool(record.enhancement["applied"])
                yield Frame(image, frame.scene)

    def cleanup(self, ctx: ProcessingContext) -> None:
        return None


def _sum_up(summary: dict[str, Any] | None, done: Enhancement) -> dict[str, Any]:
    """What was done to a video's keyframes, so far."""
    summary = summary or {
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
    return summary


class Embed:
    """Pull the file's frames and embed them in batches with every engine that embeds this
    media type: one vector per image, or per video scene, in each engine's space. Each
    batch's pictures are let go as soon as it is embedded."""

    step = Step.EMBED

    def __init__(self, engines: Sequence[tuple[str, EmbeddingEngine]], batch_size: int) -> None:
        self._engines = list(engines)
        self._batch_size = batch_size

    def applies(self, ctx: ProcessingContext) -> bool:
        return ctx.frames is not None and bool(self._engines)

    async def run(self, ctx: ProcessingContext) -> None:
        assert ctx.frames is not None
        batch: list[Frame] = []
        async with aclosing(ctx.frames) as frames:
            async for frame in frames:
                batch.append(frame)
                if len(batch) >= self._batch_size:
                    await self._embed(ctx, batch)
                    batch = []
        if batch:
            await self._embed(ctx, batch)

    async def _embed(self, ctx: ProcessingContext, batch: list[Frame]) -> None:
        images = [f.image for f in batch]
        # a whole picture padded for the models that crop (the padding is all new pixels)
        padded = [square(f.image) if f.whole else f.image for f in batch]
        try:
            embedded = await asyncio.gather(
                *(
                    self._one_engine(e, images if is_multivector(e) else padded)
                    for _, e in self._engines
                )
            )
        finally:
            for image in {id(i): i for i in images + padded}.values():
                image.close()
        for (kind, _), (vectors, pages) in zip(self._engines, embedded, strict=True):
            if pages is not None:
                ctx.tokens.setdefault(kind, []).extend(pages)
            else:
                ctx.vectors.setdefault(kind, []).extend(vectors)
        ctx.scenes.extend(f.scene for f in batch if f.scene is not None)

    @staticmethod
    async def _one_engine(
        engine: EmbeddingEngine, images: list[Image.Image]
    ) -> tuple[list[list[float]], list[PageTokens] | None]:
        """A vector per picture, or (a multi-vector model's) a vector per token of each
        page."""
        if is_multivector(engine):
            return [], await engine.embed_pages(images)
        return await engine.embed_images(images), None

    def cleanup(self, ctx: ProcessingContext) -> None:
        return None


class Persist:
    step = Step.PERSIST

    def __init__(self, adapter: UnifiedDatabaseAdapter) -> None:
        self._adapter = adapter

    def applies(self, ctx: ProcessingContext) -> bool:
        return bool(ctx.vectors) or bool(ctx.tokens) or ctx.transcribed

    async def run(self, ctx: ProcessingContext) -> None:
        await self._adapter.commit_indexed(
            ctx.record,
            ctx.vectors,
            ctx.scenes,
            windows=ctx.windows,
            previous=ctx.previous,
            model=ctx.model,
            passages=ctx.passages,
            tokens=ctx.tokens,
        )

    def cleanup(self, ctx: ProcessingContext) -> None:
        return None
