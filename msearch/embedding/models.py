"""Where a configured model name points: a local directory, a built-in alias, or a hub id."""

from __future__ import annotations

from pathlib import Path

# The demo model trained by scripts/train_demo_model.py ships inside the repository.
BUILTIN_MODELS: dict[str, Path] = {
    "demo": Path(__file__).resolve().parent.parent.parent / "models" / "demo-clip",
}


def resolve_model(name: str) -> str:
    """A path Infinity can load (local directories win) or the hub id unchanged."""
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
