"""Shared helpers for the scripts that write CLIP checkpoints in Hugging Face format.

A checkpoint here is what Infinity loads by path: config.json, weights, a CLIP tokenizer
(vocab.json + merges.txt, converted to a fast tokenizer) and a CLIPImageProcessor.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msearch  # noqa: F401  # its import hook keeps an installed torchvision from breaking transformers

SPECIAL_TOKENS = ["<|startoftext|>", "<|endoftext|>"]
# The towers of the tiny random models the tests load (CLIP, Chinese-CLIP, SigLIP): real
# architectures, as small as they go.
TINY_TOWER: dict[str, Any] = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
}
TINY_VISION: dict[str, Any] = {**TINY_TOWER, "image_size": 32, "patch_size": 8}


def byte_level_vocab(extra_words: Iterable[str] = ()) -> tuple[dict[str, int], list[str]]:
    """A valid CLIP BPE vocabulary: every byte (alone and word-final) plus optional whole
    words, each reachable through a chain of merges, then the two special tokens."""
    from transformers.models.clip.tokenization_clip import bytes_to_unicode

    byte_symbol = bytes_to_unicode()
    symbols = list(byte_symbol.values())
    vocab: dict[str, int] = {}
    for s in symbols:
        vocab.setdefault(s, len(vocab))
    for s in symbols:
        vocab.setdefault(s + "</w>", len(vocab))
    merges: list[str] = []
    for text in extra_words:
        word = "".join(byte_symbol[b] for b in text.encode())  # a Chinese character: 3 bytes
        pieces = [*word[:-1], word[-1] + "</w>"]
        while len(pieces) > 1:
            merged = pieces[0] + pieces[1]
            merge = f"{pieces[0]} {pieces[1]}"
            if merge not in merges:
                merges.append(merge)
            vocab.setdefault(merged, len(vocab))
            pieces = [merged, *pieces[2:]]
    for token in SPECIAL_TOKENS:
        vocab[token] = len(vocab)
    return vocab, merges


# CLIP's own split, except that a Chinese character is a word of its own: Chinese is written
# without spaces, and a run of characters would otherwise be one word, cut into bytes.
HAN_SPLIT = r"'s|'t|'re|'ve|'m|'ll|'d|\p{Han}|[\p{L}&&[^\p{Han}]]+|[\p{N}]|[^\s\p{L}\p{N}]+"


def write_tokenizer_and_processor(
    out_dir: Path,
    vocab: dict[str, int],
    merges: list[str],
    image_size: int,
    *,
    split_han: bool = False,
) -> None:
    from transformers import CLIPImageProcessor, CLIPProcessor, CLIPTokenizerFast

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps(vocab))
    (out_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    # from_pretrained on files we wrote: transformers ignores vocab_file= kwargs in places.
    tokenizer = CLIPTokenizerFast.from_pretrained(str(out_dir), model_max_length=77)
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
    )
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(
        str(out_dir)
    )
    if split_han:
        path = out_dir / "tokenizer.json"
        spec = json.loads(path.read_text())
        [split] = [p for p in spec["pre_tokenizer"]["pretokenizers"] if p["type"] == "Split"]
        split["pattern"] = {"Regex": HAN_SPLIT}
        path.write_text(json.dumps(spec, ensure_ascii=False, indent=2) + "\n")


def clip_config(
    vocab_size: int,
    *,
    text: dict[str, Any],
    vision: dict[str, Any],
    projection_dim: int,
) -> Any:
    from transformers import CLIPConfig

    eos_id = vocab_size - 1
    text_config = {
        "vocab_size": vocab_size,
        "max_position_embeddings": 77,
        "bos_token_id": vocab_size - 2,
        "eos_token_id": eos_id,
        "pad_token_id": eos_id,
        **text,
    }
    return CLIPConfig(text_config=text_config, vision_config=vision, projection_dim=projection_dim)
