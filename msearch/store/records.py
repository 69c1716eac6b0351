"""Plain records exchanged with the stores (no SQL or Qdrant types leak out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import PurePath
from typing import Any

import numpy as np
import numpy.typing as npt


class FileStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    INDEXED = "indexed"
    FAILED = "failed"
    SKIPPED = "skipped"
    DELETED = "deleted"


UNFINISHED = (FileStatus.QUEUED, FileStatus.PROCESSING)


def skip_reason(path: str, code: str | None) -> str:
    """How a skipped file is summed up: its extension (``.txt``) when its type is one
    msearch does not index, else its code (``unsupported_media``)."""
    if code == "unsupported_type":
        return PurePath(path).suffix.lower() or "no extension"
    return str(code)


class JobStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"


@dataclass(frozen=True)
class Passage:
    """Words found in a file: a stretch of speech (``kind`` "speech", seconds), or the text
    of a document's page (``kind`` "page": ``index`` is the page's, counted from 0)."""

    kind: str
    index: int
    start: float
    end: float
    text: str
    language: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text, "language": self.language}


@dataclass(frozen=True)
class PassageHit:
    """A passage matching a text query: ``marked`` is its text HTML-escaped with the
    matches in <mark> tags; ``strength`` grows with BM25's relevance, from 0 towards 1."""

    file_id: str
    passage: Passage
    marked: str
    strength: float


@dataclass
class SceneRecord:
    index: int
    start: float
    end: float
    keyframe: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "index": self.index,
            "start": self.start,
            "end": self.end,
            "keyframe": self.keyframe,
        }


@dataclass
class FileRecord:
    id: str
    path: str
    folder: str
    media_type: str | None = None
    mime: str | None = None
    size: int = 0
    mtime: float = 0.0
    fingerprint: str | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    taken_at: str | None = None
    camera: str | None = None
    status: FileStatus = FileStatus.QUEUED
    error_code: str | None = None
    error: str | None = None
    progress: float = 0.0
    model: str | None = None
    enhanced: bool = False
    # What the enhancement stage did: applied, steps, seconds, reason (when it could not).
    enhancement: dict[str, Any] | None = None
    # The sound: codec, sample_rate, channels, tags (title, artist...), and how many
    # windows of it were embedded; None for files without any.
    audio: dict[str, Any] | None = None
    # A document's pages, title, author, and how many of its pages were indexed (with why
    # not all, when not); None for other media.
    document: dict[str, Any] | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    indexed_at: float | None = None
    scenes: list[SceneRecord] = field(default_factory=list)

    @property
    def sound_windows(self) -> list[tuple[float, float]]:
        """The windows of the file's sound that have vectors: (start, end) in seconds."""
        return [(float(a), float(b)) for a, b in (self.audio or {}).get("windows", [])]

    def public(self) -> dict[str, Any]:
        """The file's metadata as the API and CLI show it."""
        return {
            "file_id": self.id,
            "path": self.path,
            "folder": self.folder,
            "media_type": self.media_type,
            "mime": self.mime,
            "size": self.size,
            "mtime": self.mtime,
            "width": self.width,
            "height": self.height,
            "duration": self.duration,
            "taken_at": self.taken_at,
            "camera": self.camera,
            "status": str(self.status),
            "progress": self.progress,
            "error": (
                {"code": self.error_code, "message": self.error} if self.error_code else None
            ),
            "model": self.model,
            "enhanced": self.enhanced,
            "enhancement": self.enhancement,
            "audio": self.audio,
            "document": self.document,
            "indexed_at": self.indexed_at,
            "scenes": [s.as_dict() for s in self.scenes] if self.media_type == "video" else None,
        }


@dataclass
class FolderRecord:
    """A watched folder; its files are the indexed files below ``path``."""

    id: int
    path: str
    recursive: bool = True
    added_at: float = 0.0

    def covers(self, path: str) -> bool:
        """Is ``path`` (a file) inside this folder, directly or, when recursive, below?"""
        root = self.path.rstrip("/") or "/"
        parent = path.rsplit("/", 1)[0] or "/"
        if parent == root:
            return True
        return self.recursive and path.startswith(root.rstrip("/") + "/")


@dataclass
class JobRecord:
    id: str
    total: int
    done: int = 0
    failed: int = 0
    status: JobStatus = JobStatus.RUNNING
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(frozen=True)
class VectorPoint:
    id: str
    vector: list[float]  # in a multi-vector collection, the tokens' normalised mean
    payload: dict[str, Any]
    # a multi-vector collection's vectors (tokens × dimensions)
    tokens: npt.NDArray[np.float32] | list[list[float]] | None = None


@dataclass(frozen=True)
class VectorHit:
    id: str
    score: float
    payload: dict[str, Any]


@dataclass(frozen=True)
class VectorFilter:
    """Search restrictions; every field is optional and they combine with AND."""

    media_types: tuple[str, ...] = ()
    folder: str | None = None
    taken_after: float | None = None
    taken_before: float | None = None
    exclude_file_ids: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.media_types
            or self.folder
            or self.exclude_file_ids
            or self.taken_after is not None
            or self.taken_before is not None
        )
