"""colpali-engine 0.3.8's ColQwen2 on this stack's transformers.

0.3.8 is the colpali-engine release for torch 2.13 (Infinity 0.0.78 loads ColPali-family
models through it), and it was written for transformers 4.47. Transformers 4.52 moved
Qwen2-VL's language model under ``model.language_model`` and its rope index onto
``Qwen2VLModel``, and 4.57's processor sets ``image_token_id``, which ColQwen2's processor
declares read-only. Three names are given back here, before Infinity loads a model; none
changes what is computed (the token embeddings, the rope index and the image token's id
are the same objects and numbers, found where they now live).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# The architectures Infinity hands to colpali-engine (its IMAGE_COL_MODELS).
COL_ARCHITECTURES = frozenset({"ColPali", "ColQwen2", "ColIdefics2"})


def is_col_model(source: str) -> bool:
    """Whether the model directory ``source`` holds a ColPali-family checkpoint."""
    config_path = Path(source) / "config.json"
    if not config_path.is_file():
        return False
    try:
        architectures = json.loads(config_path.read_text()).get("architectures") or []
    except (OSError, ValueError):
        return False
    return bool(COL_ARCHITECTURES.intersection(architectures))


def mend_colpali_engine() -> None:
    """Make colpali-engine 0.3.8's ColQwen2 and its processor work on transformers 4.57
    (idempotent; nothing to do where colpali-engine is not installed)."""
    try:
        from colpali_engine.models import ColQwen2, ColQwen2Processor
        from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VLModel
    except ImportError:
        return
    if not hasattr(Qwen2VLModel, "embed_tokens"):
        Qwen2VLModel.embed_tokens = property(  # type: ignore[attr-defined]
            lambda self: self.language_model.embed_tokens
        )
    if not hasattr(ColQwen2, "get_rope_index"):

        def get_rope_index(self: Any, *args: Any, **kwargs: Any) -> Any:
            return self.model.get_rope_index(*args, **kwargs)

        ColQwen2.get_rope_index = get_rope_index
    token_id = vars(ColQwen2Processor).get("image_token_id")
    if isinstance(token_id, property) and token_id.fset is None:
        # Qwen2VLProcessor.__init__ stores the id it looks up; ColQwen2's property looks
        # the same id up from the same tokenizer, so the stored one can be let go.
        ColQwen2Processor.image_token_id = property(token_id.fget, lambda self, value: None)
