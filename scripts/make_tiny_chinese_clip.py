"""Write a tiny random Chinese-CLIP (Hugging Face format) for plumbing and parity tests.

    python scripts/make_tiny_chinese_clip.py OUT_DIR [--seed 0] [--dim 64]

Architecturally a real ``ChineseCLIPModel`` (a BERT text tower, a ViT image tower) like
``OFA-Sys/chinese-clip-vit-base-patch16``, with a real BERT WordPiece tokenizer whose
vocabulary holds every CJK unified ideograph (U+4E00-U+9FFF: unsegmented Chinese is split
into characters, as Chinese-CLIP's own vocabulary does) and a few English words, and a
``ChineseCLIPImageProcessor``, so Infinity loads it by path like the downloaded checkpoint.
Meaningless semantically. Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from clip_builder import TINY_TOWER, TINY_VISION

import msearch  # noqa: F401  # its import hook keeps an installed torchvision from breaking transformers

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["a", "red", "star", "blue", "circle", "photo", "of", "the", "on", "grey", "background"]


def vocabulary() -> list[str]:
    ascii_tokens = [chr(c) for c in range(33, 127)]
    ideographs = [chr(c) for c in range(0x4E00, 0xA000)]
    return [*SPECIAL, *ascii_tokens, *WORDS, *ideographs, "，", "。"]


def build(out_dir: Path, *, seed: int = 0, dim: int = 64) -> Path:
    import torch
    from transformers import (
        BertTokenizerFast,
        ChineseCLIPConfig,
        ChineseCLIPImageProcessor,
        ChineseCLIPModel,
        ChineseCLIPProcessor,
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    tokens = list(dict.fromkeys(vocabulary()))
    (out_dir / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(
        vocab_file=str(out_dir / "vocab.txt"),
        do_lower_case=True,
        tokenize_chinese_chars=True,
        model_max_length=512,
    )
    config = ChineseCLIPConfig(
        text_config={"vocab_size": len(tokens), **TINY_TOWER, "max_position_embeddings": 512},
        vision_config=TINY_VISION,
        projection_dim=dim,
    )
    torch.manual_seed(seed)
    model = ChineseCLIPModel(config).eval()
    model.save_pretrained(str(out_dir), safe_serialization=True)
    images = ChineseCLIPImageProcessor(
        size={"height": 32, "width": 32}, crop_size={"height": 32, "width": 32}
    )
    ChineseCLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(str(out_dir))
    return out_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dim", type=int, default=64)
    args = parser.parse_args()
    print(build(args.out_dir, seed=args.seed, dim=args.dim))


if __name__ == "__main__":
    main()
