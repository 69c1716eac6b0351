"""Where a configured model name points: a built-in alias, a local directory or a hub id."""

from __future__ import annotations

import os
from pathlib import Path

# The small CLIP trained on synthetic shapes (scripts/train_demo_model.py) ships with
# msearch, so search works offline from the first run (`msearch demo`).
DEMO_MODEL_DIR = Path(__file__).resolve().parent.parent / "assets" / "demo-clip"
BUILTIN_MODELS: dict[str, Path] = {"demo": DEMO_MODEL_DIR}
# The small CLAP trained on synthetic sounds (scripts/train_demo_clap.py): ``audio.model:
# demo``.
DEMO_SOUND_MODEL_DIR = DEMO_MODEL_DIR.parent / "demo-clap"
BUILTIN_SOUND_MODELS: dict[str, Path] = {"demo": DEMO_SOUND_MODEL_DIR}


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


HUB_PROBE_TIMEOUT_S = 5.0


def is_hub_id(source: str) -> bool:
    return not Path(source).is_dir()


def cached_snapshot(repo_id: str) -> str | None:
    """The model's folder in the Hugging Face cache, if it was downloaded before: loading
    from there needs no network at all."""
    try:
        from huggingface_hub import snapshot_download

        return str(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached, or not a valid repo id
        return None


def unreachable_model(
    name: str,
    reason: str,
    setting: str = "embedding.model",
    instead: str = "run 'msearch demo' for the built-in model",
) -> str:
    """What to do when a hub model is neither on this machine nor downloadable
    (``setting``: where the configuration names it; ``instead``: what works offline)."""
    variable = "MSEARCH_" + setting.upper().replace(".", "__")
    return (
        f"the model {name!r} is not on this machine and cannot be downloaded ({reason}). "
        f"Set {variable} ({setting}) to a local model directory; or "
        f"download it once where there is network ('hf download {name}'), and it is "
        f"found in the Hugging Face cache; or {instead}"
    )


def probe_hub(repo_id: str, timeout_s: float = HUB_PROBE_TIMEOUT_S) -> str | None:
    """One short look at the hub, instead of the loaders' own minute of retries and
    warnings: None when the model can be fetched, else why not."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return "HF_HUB_OFFLINE is set"
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import RepositoryNotFoundError
    from requests.exceptions import ConnectionError, Timeout

    try:
        HfApi().model_info(repo_id, timeout=timeout_s)
    except (ConnectionError, Timeout):
        return f"the model hub at {constants.ENDPOINT} cannot be reached"
    except RepositoryNotFoundError:
        return f"the hub at {constants.ENDPOINT} has no model of that name"
    except Exception as exc:
        first_line = str(exc).splitlines()[0][:160] if str(exc) else "no answer"
        return f"{type(exc).__name__}: {first_line}"
    return None
