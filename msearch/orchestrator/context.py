"""What travels through the stages for one file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from msearch.media.detect import DetectedType
from msearch.media.originals import OriginalFile
from msearch.store.records import FileRecord, SceneRecord


@dataclass
class ProcessingContext:
    path: Path
    record: FileRecord
    previous: FileRecord | None
    detected: DetectedType | None = None
    images: list[Image.Image] = field(default_factory=list)
    scenes: list[SceneRecord] = field(default_factory=list)
    vectors: list[list[float]] = field(default_factory=list)
    skipped: bool = False
    # The original, opened once by Preflight; every later read goes through it.
    original: OriginalFile | None = None

    def opened(self) -> OriginalFile:
        if self.original is None:
            raise RuntimeError("the original file was not opened (Preflight runs first)")
        return self.original
