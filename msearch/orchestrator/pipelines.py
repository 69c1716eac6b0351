"""A stage list per media type, built from a decoder of its own and the shared stages.

Preflight runs first for every file (it says what the file is); the file's media type
then picks its pipeline here. A new media type is a decoder and one more entry."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass

from msearch.config import PerformanceSettings, VideoSettings
from msearch.embedding.base import EmbeddingEngine
from msearch.media.detect import MediaType
from msearch.media.enhance import ImageEnhancer
from msearch.media.video import FFmpegSceneDetector
from msearch.orchestrator.decoders import DecodeImage, DecodeVideo
from msearch.orchestrator.progress import ProgressSink
from msearch.orchestrator.stages import Embed, Enhance, Persist, Stage
from msearch.store.adapter import UnifiedDatabaseAdapter


@dataclass(frozen=True)
class PipelineParts:
    adapter: UnifiedDatabaseAdapter
    engine: EmbeddingEngine
    settings: PerformanceSettings
    video: VideoSettings
    progress: ProgressSink
    enhancer: ImageEnhancer | None
    batch_size: int
    # Bounded pools: images and the long-running video decodes apart, so that a few long
    # videos cannot hold every thread.
    image_executor: Executor
    video_executor: Executor


def build_pipelines(parts: PipelineParts) -> dict[MediaType, list[Stage]]:
    enhance = Enhance(parts.adapter, parts.enhancer)
    embed = Embed(parts.engine, parts.batch_size)
    persist = Persist(parts.adapter)
    return {
        MediaType.IMAGE: [
            DecodeImage(parts.adapter, parts.engine, parts.settings, parts.image_executor),
            enhance,
            embed,
            persist,
        ],
        MediaType.VIDEO: [
            DecodeVideo(
                parts.adapter,
                parts.engine,
                FFmpegSceneDetector(parts.video),
                parts.settings,
                parts.progress,
                parts.video_executor,
                queue_size=parts.batch_size * 2,
            ),
            enhance,
            embed,
            persist,
        ],
    }
