"""Finding media files below a folder (for the CLI, batch API requests and rescans)."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Iterator
from pathlib import Path


def is_ignored(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def iter_media_files(
    root: Path, extensions: Iterable[str], ignore: Iterable[str], *, recursive: bool = True
) -> Iterator[Path]:
    """Files below ``root`` whose extension is one we index, in a stable order; ignored
    names (hidden, partial downloads, temp files) and ignored directories are skipped.
    Extensions only pre-select candidates: the pipeline still checks the content."""
    wanted = {e.lower() for e in extensions}
    patterns = list(ignore)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not is_ignored(d, patterns)) if recursive \
            else []
        for name in sorted(filenames):
            if is_ignored(name, patterns) or Path(name).suffix.lower() not in wanted:
                continue
            yield Path(dirpath) / name


def expand_paths(
    paths: Iterable[Path], extensions: Iterable[str], ignore: Iterable[str]
) -> list[Path]:
    """Files stay as given (whatever their name); folders become the media files below."""
    exts, patterns = list(extensions), list(ignore)
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(iter_media_files(path, exts, patterns))
        else:
            found.append(path)
    return list(dict.fromkeys(found))
