"""colpali-engine 0.3.8's ColQwen2, ColPali and ColIdefics2 on this stack's transformers.

0.3.8 is the colpali-engine release for torch 2.13 (Infinity 0.0.78 loads ColPali-family
models through it), and it was written for transformers 4.47. Transformers 4.52 moved
Qwen2-VL's language model under ``model.language_model`` and its rope index onto
``Qwen2VLModel``, and 4.57's processor sets ``image_token_id``, which ColQwen2's processor
declares read-only. Three names are given back here, before Infinity loads a model; none
changes what is computed (the token embeddings, the rope index and the image token's id
are the same objects and numbers, found where they now live). ColQwen2's decoder is no
longer asked for the hidden states of every layer, of which it keeps the last.

4.52 also nested PaliGemma's towers one level deeper (``model.model.vision_tower`` where
ColPali's checkpoints, saved by 4.47, say ``model.vision_tower``). Transformers maps a
PaliGemma checkpoint's old names itself, but ColPali wraps PaliGemma and asks for no
mapping, so a real ColPali would load as a random model with a warning. ColPali is given
the mapping, its language head is tied to the token embeddings again, and its forward pass
computes only the last hidden state it uses, not the vocabulary's logits for every token
(a 257,216-wide row each, about 1 GB a page in float32) nor every layer's states.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from msearch.errors import ModelUnavailable

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


def may_be_col_model(source: str, *, on_disk: bool) -> bool:
    """Whether colpali-engine must be mended before ``source`` loads: it holds a
    ColPali-family checkpoint, or it is still to be downloaded (``on_disk`` false), when
    nobody can tell yet."""
    return not on_disk or is_col_model(source)


def refuse_adapter(source: str, setting: str) -> None:
    """A LoRA adapter (vidore/colqwen2-v1.0, vidore/colpali-v1.3) is not a model of its
    own: Infinity would fail on its missing config.json. Say what to use instead."""
    folder = Path(source)
    adapter = folder / "adapter_config.json"
    if (folder / "config.json").is_file() or not adapter.is_file():
        return
    try:
        base = json.loads(adapter.read_text()).get("base_model_name_or_path")
    except (OSError, ValueError):
        base = None
    raise ModelUnavailable(
        f"{source} is a LoRA adapter (adapter_config.json{f', on {base}' if base else ''}), "
        f"not a model of its own: set {setting} to a merged checkpoint, such as "
        "vidore/colqwen2-v1.0-merged or vidore/colpali-v1.3-merged"
    )


def mend_colpali_engine() -> None:
    """Make colpali-engine 0.3.8's ColQwen2, ColPali and ColIdefics2 and their processors
    work on transformers 4.57 (idempotent; nothing to do without colpali-engine)."""
    try:
        from colpali_engine.models import ColIdefics2Processor, ColPali, ColQwen2, ColQwen2Processor
        from transformers import Idefics2Processor
        from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VLModel
    except ImportError:
        return
    _mend_colpali(ColPali)
    if ColIdefics2Processor.__init__ is not Idefics2Processor.__init__:
        # its own __init__ only passes (*args, **kwargs) on to Idefics2Processor's, and
        # 4.57 hands a processor only the saved settings its __init__ names: the chat
        # template and image_seq_len were dropped, and every page failed
        ColIdefics2Processor.__init__ = Idefics2Processor.__init__
    if not hasattr(Qwen2VLModel, "embed_tokens"):
        Qwen2VLModel.embed_tokens = property(  # type: ignore[attr-defined]
            lambda self: self.language_model.embed_tokens
        )
    _mend_colqwen2(ColQwen2)
    if not hasattr(ColQwen2, "get_rope_index"):

        def get_rope_index(self: Any, *args: Any, **kwargs: Any) -> Any:
            return self.model.get_rope_index(*args, **kwargs)

        ColQwen2.get_rope_index = get_rope_index
    token_id = vars(ColQwen2Processor).get("image_token_id")
    if isinstance(token_id, property) and token_id.fset is None:
        # Qwen2VLProcessor.__init__ stores the id it looks up; ColQwen2's property looks
        # the same id up from the same tokenizer, so the stored one can be let go.
        ColQwen2Processor.image_token_id = property(token_id.fget, lambda self, value: None)


# ColPali's checkpoint names (transformers 4.47's PaliGemma inside ``model``) to where
# 4.57 keeps those weights. Written as transformers writes its own (dots unescaped):
# saving turns each value back into its key with the '^' stripped, as a replacement text.
COLPALI_CHECKPOINT_NAMES = {
    "^model.language_model.model": "model.model.language_model",
    "^model.vision_tower": "model.model.vision_tower",
    "^model.multi_modal_projector": "model.model.multi_modal_projector",
    "^model.language_model.lm_head": "model.lm_head",
}


def _mend_colqwen2(colqwen2: Any) -> None:
    if getattr(colqwen2, "_msearch_mended", False):
        return
    inner_forward = colqwen2.inner_forward

    def last_state_only(self: Any, *args: Any, **kwargs: Any) -> Any:
        # it asks the decoder for every layer's hidden states and keeps only the last one,
        # which the decoder returns anyway: the others are ~140 MB a page of float32 for
        # the real model (29 states of 780 tokens × 1,536), held until the batch ends
        kwargs["output_hidden_states"] = False
        return inner_forward(self, *args, **kwargs)

    colqwen2.inner_forward = last_state_only
    colqwen2._msearch_mended = True


def _mend_colpali(colpali: Any) -> None:
    if getattr(colpali, "_msearch_mended", False):
        return
    colpali._checkpoint_conversion_mapping = dict(COLPALI_CHECKPOINT_NAMES)
    # Its own tie_weights ties the Gemma inside, which on 4.57 has no head: PaliGemma's head
    # (vocabulary × width, ~2 GB of float32 for the real model) stayed a matrix of its own,
    # initialised at random on every load. PaliGemma ties it to the token embeddings, as
    # the checkpoints were saved (they hold no head).
    colpali._tied_weights_keys = ["model.lm_head.weight"]
    colpali.tie_weights = lambda self: self.model.tie_weights()
    # Its own forward runs PaliGemma whole to take the last of every layer's hidden states:
    # the vocabulary's logits for every token (a 257,216-wide row each, ~1 GB a page of
    # float32), ~160 MB a page of states and a key-value cache, none of them used.
    # PaliGemma's own model gives that last state alone, the same numbers.
    colpali.colpali_engine_forward = colpali.forward
    colpali.forward = _colpali_forward
    colpali._msearch_mended = True


def _colpali_forward(self: Any, *args: Any, **inputs: Any) -> Any:
    """colpali-engine's ColPali.forward (0.3.8) computing only what it returns."""
    inputs.pop("output_hidden_states", None)
    if "pixel_values" in inputs:
        inputs["pixel_values"] = inputs["pixel_values"].to(dtype=self.dtype)
    last = self.model.model(*args, **inputs, use_cache=False).last_hidden_state
    proj = self.custom_text_proj(last)
    proj = proj / proj.norm(dim=-1, keepdim=True)
    return proj * inputs["attention_mask"].unsqueeze(-1)
