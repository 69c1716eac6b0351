"""A stage list per media type, built from a decoder of its own and the shared stages.

Preflight runs first for every file (it says what the file is); the file's media type
then picks its pipeline here. A new media type is a decoder and one more entry."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass

from msearch.config import (
    AudioSettings,
    DocumentSettings,
    PerformanceSettings,
    SpeechSettings,
    VideoSettings,
)
from msearch.embedding.registry import EngineRegistry
from msearch.media.detect import MediaType
from msearch.media.enhance import ImageEnhancer
from msearch.media.video import FFmpegSceneDetector
from msearch.orchestrator.decoders import DecodeAudio, DecodeDocument, DecodeImage, DecodeVideo
from msearch.orchestrator.progress import ProgressSink
from msearch.orchestrator.sound import EmbedSound
from msearch.orchestrator.speech import Transcribe
from msearch.orchestrator.stages import Embed, Enhance, Persist, Stage
from msearch.speech.transcriber import Transcriber
from msearch.store.adapter import UnifiedDatabaseAdapter


@dataclass(frozen=True)
class PipelineParts:
    adapter: UnifiedDatabaseAdapter
    engines: EngineRegistry
    settings: PerformanceSettings
    video: VideoSettings
    audio: AudioSettings
    progress: ProgressSink
    enhancer: ImageEnhancer | None
    batch_size: int
    # Bounded pools: images and the long-running video decodes apart, so that a few long
    # videos cannot hold every thread.
    image_executor: Executor
    video_executor: Executor
    # what is said (None: speech is off or its engine could not load)
    transcriber: Transcriber | None = None
    speech: SpeechSettings | None = None
    documents: DocumentSettings | None = None


def build_pipelines(parts: PipelineParts) -> dict[MediaType, list[Stage]]:
    enhance = Enhance(parts.adapter, parts.enhancer)
    persist = Persist(parts.adapter)

    def embed(media_type: MediaType) -> Embed:
        return Embed(parts.engines.embedding(media_type), parts.batch_size)

    def hear(media_type: MediaType) -> EmbedSound:
        return EmbedSound(
            parts.engines,
            media_type,
            parts.audio,
            parts.video_executor,
            words_too=parts.transcriber is not None,
        )

    def side(media_type: MediaType) -> int:
        """Pictures are decoded as large as the largest model embedding them looks."""
        return max((e.input_size for _, e in parts.engines.embedding(media_type)), default=224)

    def listen() -> list[Stage]:
        if parts.transcriber is None:
            return []
        settings = parts.speech or SpeechSettings()
        return [Transcribe(parts.transcriber, settings, parts.video_executor, parts.progress)]

    pipelines: dict[MediaType, list[Stage]] = {
        MediaType.IMAGE: [
            DecodeImage(parts.adapter, side(MediaType.IMAGE), parts.settings, parts.image_executor),
            enhance,
            embed(MediaType.IMAGE),
            persist,
        ],
        MediaType.VIDEO: [
            DecodeVideo(
                parts.adapter,
                side(MediaType.VIDEO),
                FFmpegSceneDetector(parts.video),
                parts.settings,
                parts.progress,
                parts.video_executor,
                queue_size=parts.batch_size * 2,
            ),
            enhance,
            embed(MediaType.VIDEO),
            hear(MediaType.VIDEO),
            *listen(),
            persist,
        ],
        MediaType.AUDIO: [
            DecodeAudio(parts.image_executor),
            hear(MediaType.AUDIO),
            *listen(),
            persist,
        ],
    }
    documents = parts.documents or DocumentSettings()
    if documents.enabled:
        pipelines[MediaType.DOCUMENT] = [
            DecodeDocument(
                parts.adapter,
                side(MediaType.DOCUMENT),
                parts.settings,
                documents,
                parts.progress,
                parts.image_executor,
                queue_size=parts.batch_size * 2,
            ),
            embed(MediaType.DOCUMENT),
            persist,
        ]
    return pipelines
