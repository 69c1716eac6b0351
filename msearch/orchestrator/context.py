"""What travels through the stages for one file."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from msearch.media.detect import DetectedType
from msearch.media.originals import OriginalFile
from msearch.store.records import FileRecord, Passage, SceneRecord


@dataclass
class Frame:
    """One picture to embed: a whole image, the keyframe of a video's scene, or a page."""

    image: Image.Image
    scene: SceneRecord | None = None
    # every part of it matters (a document page): a model that centre-crops gets it padded
    # to a square, a page model (a vector per token) the page as it is, as it was trained
    whole: bool = False


@dataclass
class ProcessingContext:
    path: Path
    record: FileRecord
    previous: FileRecord | None
    detected: DetectedType | None = None
    # Decoders set a lazy stream; the embed stage pulls it, so a long video's frames are
    # decoded, enhanced and embedded a batch at a time and never all held at once.
    frames: AsyncGenerator[Frame, None] | None = None
    scenes: list[SceneRecord] = field(default_factory=list)
    # per engine kind: one vector per image, or per scene, or per window of sound
    vectors: dict[str, list[list[float]]] = field(default_factory=dict)
    # per multi-vector engine kind: a vector per token of each page
    tokens: dict[str, list[npt.NDArray[np.float32]]] = field(default_factory=dict)
    # per engine kind that hears: the (start, end) of each window embedded, in seconds
    windows: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    # what is said in it (the transcriber's segments); ``transcribed`` once that is known,
    # which indexes an audio file by its words even where no sound model hears it
    passages: list[Passage] = field(default_factory=list)
    transcribed: bool = False
    # what the record will say embedded it (its media type's models), once known
    model: str | None = None
    skipped: bool = False
    # The original, opened once by Preflight; every later read goes through it.
    original: OriginalFile | None = None

    def opened(self) -> OriginalFile:
        if self.original is None:
            raise RuntimeError("the original file was not opened (Preflight runs first)")
        return self.original
