"""Where a configured model name points: a built-in alias, a local directory or a hub id."""

from __future__ import annotations

from pathlib import Path

# The small CLIP trained on synthetic shapes (scripts/train_demo_model.py) ships with
# msearch, so search works offline from the first run (`msearch demo`).
DEMO_MODEL_DIR = Path(__file__).resolve().parent.parent / "assets" / "demo-clip"
BUILTIN_MODELS: dict[str, Path] = {"demo": DEMO_MODEL_DIR}


def resolve_model(name: str) -> str:
    """A path Infinity can load (aliases and existing local directories) or the hub id."""
    if name in BUILTIN_MODELS:
        return str(BUILTIN_MODELS[name])
    local = Path(name).expanduser()
    if local.is_dir():
        return str(local.resolve())
    return name


def model_label(name: str) -> str:
    """A stable human id for a model: the alias, the hub id, or the directory's name."""
    if name in BUILTIN_MODELS:
        return name
    local = Path(name).expanduser()
    if local.is_dir():
        return local.resolve().name
    return name
