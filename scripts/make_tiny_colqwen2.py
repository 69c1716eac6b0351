"""Write a tiny random ColQwen2 (Hugging Face format) for plumbing and parity tests.

    python scripts/make_tiny_colqwen2.py OUT_DIR [--seed 0] [--page-tokens 64]

Architecturally colpali-engine's ``ColQwen2`` like ``vidore/colqwen2-v1.0-merged``: a
Qwen2-VL (a ViT of 14-px patches merged 2×2, and a Qwen2 decoder with multimodal rope) whose
last hidden states are projected to 128 dimensions and normalised per token. Two decoder
layers of width 64 and two vision blocks of width 32, a byte-level BPE tokenizer of a few
hundred tokens with Qwen2-VL's special tokens, and a Qwen2-VL image processor that keeps
pages between 4 and ``--page-tokens`` merged patches (the real checkpoint's 768 for a
benchmark's storage), so that Infinity loads it by path like the real checkpoint.
Meaningless semantically. Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import msearch  # noqa: F401  # its import hook keeps an installed torchvision from breaking transformers

SPECIAL = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
# what the processor writes around a page and a query, so that their words are tokens
CORPUS = [
    "user Describe the image. Query: ",
    "a bar chart of the quarterly revenue",
    "a slide with a photo and a title",
    "the saffron risotto recipe on page seven",
]


def build(out_dir: Path, *, seed: int = 0, page_tokens: int = 64) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast, Qwen2VLConfig
    from transformers.models.qwen2_vl import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    from msearch.embedding.colpali import mend_colpali_engine

    mend_colpali_engine()
    from colpali_engine.models import ColQwen2, ColQwen2Processor

    out_dir.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(CORPUS, trainer)
    tokenizer = Qwen2TokenizerFast(
        tokenizer_object=bpe, eos_token=SPECIAL[0], pad_token=SPECIAL[0], unk_token=None
    )
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL[1:]})
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL}
    processor = ColQwen2Processor(
        image_processor=Qwen2VLImageProcessor(
            min_pixels=4 * 28 * 28, max_pixels=page_tokens * 28 * 28, patch_size=14, merge_size=2
        ),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        num_image_tokens=page_tokens,
    )
    processor.save_pretrained(out_dir)
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 2048,
            # temporal, height and width halves of each head's 16 rotary dimensions
            "rope_scaling": {"type": "mrope", "mrope_section": [2, 2, 4]},
            "tie_word_embeddings": False,
        },
        vision_config={
            "depth": 2,
            "embed_dim": 32,
            "hidden_size": 64,  # the merger's output: the decoder's width
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "in_channels": 3,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|endoftext|>"],
        architectures=["ColQwen2"],
    )
    torch.manual_seed(seed)
    ColQwen2(config).eval().save_pretrained(out_dir)
    return out_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--page-tokens", type=int, default=64)
    args = parser.parse_args()
    print(build(args.out_dir, seed=args.seed, page_tokens=args.page_tokens))


if __name__ == "__main__":
    main()
