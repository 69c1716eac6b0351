"""Write a tiny random ColPali (Hugging Face format) for plumbing and parity tests.

    python scripts/make_tiny_colpali.py OUT_DIR [--seed 0]

Architecturally colpali-engine's ``ColPali`` like ``vidore/colpali-v1.3-merged``: a
PaliGemma (a SigLIP ViT of 14-px patches whose every patch is a token, and a Gemma decoder)
whose last hidden states are projected to 128 dimensions and normalised per token. Two
decoder layers of width 64 and two vision blocks of width 32 on 56-px pages (16 page
tokens), a BPE tokenizer of a few hundred words plus PaliGemma's ``<image>``, location and
segmentation tokens, and a SiglipImageProcessor. The weights are written under the names
the real checkpoints use (transformers 4.47's: ``model.language_model.model.layers...``,
``model.vision_tower...``), not this stack's, so that loading one is what is tested.
Meaningless semantically. Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import msearch  # noqa: F401  # its import hook keeps an installed torchvision from breaking transformers

SPECIAL = ["<unk>", "<pad>", "<eos>", "<bos>"]
# what the processor writes around a page and a query, so that their words are tokens
CORPUS = [
    "Describe the image.\n",
    "Query: a bar chart of the quarterly revenue\n",
    "a slide with a photo and a title",
    "the saffron risotto recipe on page seven",
]
PAGE_SIDE = 56
# this stack's names of a ColPali's weights, and the names its checkpoints were saved under
CHECKPOINT_NAMES = [
    (r"^model\.model\.language_model\.", "model.language_model.model."),
    (r"^model\.model\.vision_tower\.", "model.vision_tower."),
    (r"^model\.model\.multi_modal_projector\.", "model.multi_modal_projector."),
]


def _checkpoint_name(name: str) -> str:
    for pattern, old in CHECKPOINT_NAMES:
        name = re.sub(pattern, old, name)
    return name


def sentencepiece_bpe(corpus: list[str], special: list[str], vocab_size: int = 300) -> Any:
    """A BPE tokenizer as Gemma's and Llama's SentencePiece ones are: spaces become '▁' and
    start a word; ``special[0]`` is the unknown token."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE(unk_token=special[0]))
    bpe.normalizer = normalizers.Replace(" ", "▁")
    bpe.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    bpe.decoder = decoders.Replace("▁", " ")
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special)
    bpe.train_from_iterator([text.replace(" ", "▁") for text in corpus], trainer)
    return bpe


def build(out_dir: Path, *, seed: int = 0) -> Path:
    import torch
    from colpali_engine.models import ColPali, ColPaliProcessor
    from safetensors.torch import load_file, save_file
    from transformers import GemmaTokenizerFast, PaliGemmaConfig, SiglipImageProcessor

    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = GemmaTokenizerFast(
        tokenizer_object=sentencepiece_bpe(CORPUS, SPECIAL),
        pad_token="<pad>",
        eos_token="<eos>",
        bos_token="<bos>",
        unk_token="<unk>",
    )
    image_processor = SiglipImageProcessor(
        size={"height": PAGE_SIDE, "width": PAGE_SIDE}, image_mean=[0.5] * 3, image_std=[0.5] * 3
    )
    image_processor.image_seq_length = (PAGE_SIDE // 14) ** 2
    # adds '<image>' and the 1,152 location and segmentation tokens to the tokenizer
    processor = ColPaliProcessor(image_processor=image_processor, tokenizer=tokenizer)
    processor.save_pretrained(out_dir)
    config = PaliGemmaConfig(
        vision_config={
            "model_type": "siglip_vision_model",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": PAGE_SIDE,
            "patch_size": 14,
            "projection_dim": 64,
            "num_image_tokens": image_processor.image_seq_length,
        },
        text_config={
            "model_type": "gemma",
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 1,
            "head_dim": 16,
            "max_position_embeddings": 512,
        },
        projection_dim=64,
        image_token_index=processor.image_token_id,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        architectures=["ColPali"],
    )
    torch.manual_seed(seed)
    ColPali(config).eval().save_pretrained(out_dir)
    weights = out_dir / "model.safetensors"
    state = load_file(weights)
    save_file(
        {_checkpoint_name(name): tensor for name, tensor in state.items()},
        weights,
        metadata={"format": "pt"},
    )
    return out_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(build(args.out_dir, seed=args.seed))


if __name__ == "__main__":
    main()
