"""Where a configured model name points: a local directory or a hub id."""

from __future__ import annotations

from pathlib import Path


def resolve_model(name: str) -> str:
    """A path Infinity can load (an existing local directory wins) or the hub id unchanged."""
    local = Path(name).expanduser()
    if local.is_dir():
        return str(local.resolve())
    return name


def model_label(name: str) -> str:
    """A stable human id for a model: the hub id, or the directory's name."""
    local = Path(name).expanduser()
    if local.is_dir():
        return local.resolve().name
    return name
