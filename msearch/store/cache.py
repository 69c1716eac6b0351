"""The cache of derived images: thumbnails (one per image, one per video scene) and
enhanced copies. Its file-system work (globbing, unlinking, emptying) runs off the event
loop."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

THUMBNAILS, ENHANCED = "thumbnails", "enhanced"


class MediaCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def thumbnail_path(self, file_id: str, scene_index: int | None = None) -> Path:
        return self._path(THUMBNAILS, file_id, scene_index)

    def enhanced_path(self, file_id: str, scene_index: int | None = None) -> Path:
        """Where the enhanced copy of an image (or of a video's keyframe) is kept."""
        return self._path(ENHANCED, file_id, scene_index)

    def _path(self, kind: str, file_id: str, scene_index: int | None) -> Path:
        suffix = f"_{scene_index}" if scene_index else ""
        return self.root / kind / file_id[:2] / f"{file_id}{suffix}.jpg"

    async def remove_file(self, file_id: str) -> None:
        """Everything derived from one file, its scenes' images included."""
        await asyncio.to_thread(self._remove_file, file_id)

    def _remove_file(self, file_id: str) -> None:
        for cached in (self.thumbnail_path(file_id), self.enhanced_path(file_id)):
            for scene_copy in cached.parent.glob(f"{file_id}_*.jpg"):
                scene_copy.unlink(missing_ok=True)
            cached.unlink(missing_ok=True)

    async def empty(self, *, derived_only: bool) -> int:
        """Remove the whole cache (or only the derived images); how many files it held."""
        kinds = (THUMBNAILS, ENHANCED) if derived_only else None
        return await asyncio.to_thread(_empty, self.root, kinds)


def _empty(root: Path, kinds: tuple[str, ...] | None) -> int:
    targets = [root] if kinds is None else [root / k for k in kinds]
    count = 0
    for target in targets:
        if target.is_dir():
            count += sum(1 for p in target.rglob("*") if p.is_file())
            shutil.rmtree(target)
    return count
