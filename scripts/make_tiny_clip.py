"""Write a tiny random CLIP (Hugging Face format) for plumbing tests.

    python scripts/make_tiny_clip.py OUT_DIR [--seed 0] [--dim 64]

The model is meaningless semantically but architecturally a real CLIPModel with a real
CLIP tokenizer and image processor, so Infinity loads it by path exactly like a
downloaded checkpoint. Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from clip_builder import (
    TINY_TOWER,
    TINY_VISION,
    byte_level_vocab,
    clip_config,
    write_tokenizer_and_processor,
)

WORDS = ["a", "the", "photo", "of", "dog", "cat", "red", "blue", "on", "beach", "sunset"]


def build(out_dir: Path, *, seed: int = 0, dim: int = 64) -> Path:
    import torch
    from transformers import CLIPModel

    vocab, merges = byte_level_vocab(WORDS)
    config = clip_config(
        len(vocab),
        text=TINY_TOWER,
        vision=TINY_VISION,
        projection_dim=dim,
    )
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    write_tokenizer_and_processor(out_dir, vocab, merges, image_size=32)
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
