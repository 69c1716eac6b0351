"""Finding media files below a folder (for the CLI, batch API requests and rescans)."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Iterator
from pathlib import Path


def is_ignored(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def iter_media_files(
    root: Path,
    extensions: Iterable[str] | None,
    ignore: Iterable[str],
    *,
    recursive: bool = True,
) -> Iterator[Path]:
    """Files below ``root`` whose extension is one we index (every file, for ``None``: the
    others are recorded as skipped, so a user sees what was left out), in a stable order;
    ignored names (hidden, partial downloads, temp files) and ignored directories are
    skipped, and so are symbolic links (to files or folders): a walk never leaves ``root``.
    Extensions only pre-select candidates: the pipeline still checks the content."""
    wanted = {e.lower() for e in extensions} if extensions is not None else None
    patterns = list(ignore)
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError:
            continue  # unreadable or vanished: nothing below it can be indexed now
        subfolders: list[Path] = []
        for entry in entries:
            if is_ignored(entry.name, patterns) or entry.is_symlink():
                continue
            if entry.is_dir(follow_symlinks=False):
                if recursive:
                    subfolders.append(Path(entry.path))
            elif wanted is None or Path(entry.name).suffix.lower() in wanted:
                yield Path(entry.path)
        pending.extend(reversed(subfolders))


def expand_paths(paths: Iterable[Path], ignore: Iterable[str]) -> list[Path]:
    """Files stay as given (whatever their name); folders become the files below them that
    are not ignored (those of other types end ``skipped``, with the reason)."""
    patterns = list(ignore)
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(iter_media_files(path, None, patterns))
        else:
            found.append(path)
    return list(dict.fromkeys(found))
