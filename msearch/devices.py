"""Which torch device ``auto`` means on this machine, decided once for every component
(Infinity and the enhancer must agree, and torch itself does not accept "auto")."""

from __future__ import annotations

import functools


@functools.cache
def resolve_device(setting: str) -> str:
    """``cuda`` where a CUDA GPU is usable, else ``mps`` on Apple silicon, else ``cpu``;
    an explicit setting is kept as it is."""
    if setting != "auto":
        return setting
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"
