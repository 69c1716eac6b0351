"""Importing torchvision (and basicsr, which needs it) where its compiled ops do not match
the installed torch.

PyPI's only torchvision for torch 2.13 is a CUDA build: next to the CPU torch its ``_C``
extension does not load, and ``import torchvision`` then fails on ``torchvision::nms``
(its meta registrations need the operator to exist). When that is detected, the two
operators torchvision insists on are defined here in pure PyTorch before it is imported,
and ``torchvision.ops.nms`` (which facexlib's face detector calls) uses the pure version.
basicsr 1.4.2 also imports ``torchvision.transforms.functional_tensor``, removed in 0.17:
it is aliased to ``torchvision.transforms.functional``.

Installing torchvision also breaks transformers (its image utilities import torchvision when
it is present), hence the embedding engine: ``msearch/__init__`` installs an import hook
that prepares the operators the moment anything first imports torchvision, so the
``enhance`` extra never breaks the core. The hook imports nothing until then.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

_lock = threading.Lock()
_state: dict[str, Any] = {}


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices of the boxes kept by greedy non-maximum suppression, best score first
    (torchvision's semantics: a box is dropped when its IoU with a kept one exceeds the
    threshold)."""
    import torch

    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    x1, y1, x2, y2 = boxes.float().unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    order = scores.argsort(descending=True)
    keep: list[torch.Tensor] = []
    while order.numel():
        best = order[0]
        keep.append(best)
        rest = order[1:]
        width = torch.minimum(x2[best], x2[rest]) - torch.maximum(x1[best], x1[rest])
        height = torch.minimum(y2[best], y2[rest]) - torch.maximum(y1[best], y1[rest])
        inter = width.clamp(min=0) * height.clamp(min=0)
        iou = inter / (areas[best] + areas[rest] - inter).clamp(min=1e-12)
        order = rest[iou <= iou_threshold]
    return torch.stack(keep)


def _native_ops_load(spec_origin: str) -> bool:
    import torch

    library = Path(spec_origin).parent / "_C.so"
    if not library.exists():
        return False
    try:
        torch.ops.load_library(str(library))
    except (OSError, RuntimeError) as exc:
        log.info(
            "torchvision's compiled ops do not load next to torch %s (%s); using "
            "pure-PyTorch replacements",
            torch.__version__,
            str(exc).splitlines()[0],
        )
        return False
    return True


def _define_pure_ops() -> None:
    import torch

    library = torch.library.Library("torchvision", "DEF")
    schema = "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"
    library.define(f"nms{schema}")
    library.define(f"qnms{schema}")
    library.impl("nms", nms, "CompositeExplicitAutograd")
    _state["library"] = library  # the definitions live as long as this object


def _prepare(origin: str) -> None:
    """Before torchvision's first import: its own ops, or the pure ones. Once."""
    if "native" not in _state:
        native = _native_ops_load(origin)
        if not native:
            _define_pure_ops()
        _state["native"] = native


class _TorchvisionImportHook(importlib.abc.MetaPathFinder):
    """Runs ``_prepare`` when anything first imports torchvision, then steps aside."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "torchvision":
            return None
        with _lock:
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            spec = importlib.util.find_spec("torchvision")
            if spec is not None and spec.origin is not None:
                _prepare(spec.origin)
        return None  # the regular finders import it


def install_import_hook() -> None:
    if "torchvision" not in sys.modules and not any(
        isinstance(f, _TorchvisionImportHook) for f in sys.meta_path
    ):
        sys.meta_path.insert(0, _TorchvisionImportHook())


def import_torchvision() -> Any:
    """torchvision, importable whatever its compiled ops, with ``ops.nms`` working and
    ``functional_tensor`` aliased; idempotent."""
    if "torchvision" in _state:
        return _state["torchvision"]
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        raise ImportError("torchvision is not installed (pip install 'msearch[enhance]')")
    with _lock:
        if "torchvision" not in sys.modules:
            _prepare(spec.origin)
    import torchvision
    import torchvision.ops
    import torchvision.transforms.functional as functional

    with _lock:
        if not _state.get("native", True):
            torchvision.ops.nms = nms
            torchvision.ops.boxes.nms = nms
        sys.modules.setdefault("torchvision.transforms.functional_tensor", functional)
        _state["torchvision"] = torchvision
    return torchvision
