"""Write a full-size CLIP ViT-B/32 with random weights (transformers' default CLIPConfig).

    python scripts/make_vit_b32_random.py OUT_DIR

Same architecture and cost as openai/clip-vit-base-patch32, for honest speed benchmarks
on machines that cannot download the real weights.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from clip_builder import byte_level_vocab, write_tokenizer_and_processor


def build(out_dir: Path, seed: int = 0) -> Path:
    if (out_dir / "model.safetensors").is_file():
        return out_dir
    import torch
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    model = CLIPModel(CLIPConfig()).eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    vocab, merges = byte_level_vocab(["a", "photo", "of", "the", "dog", "beach"])
    write_tokenizer_and_processor(out_dir, vocab, merges, image_size=224)
    return out_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    print(build(parser.parse_args().out_dir))


if __name__ == "__main__":
    main()
