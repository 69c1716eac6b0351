"""Write a tiny random CLAP (Hugging Face format) for plumbing and parity tests.

    python scripts/make_tiny_clap.py OUT_DIR [--seed 0] [--dim 32] [--fused] [--full]

Architecturally a real unfused ``ClapModel`` (HTSAT audio tower, RoBERTa text tower) with a
real byte-level BPE tokenizer and ``ClapFeatureExtractor`` at 48 kHz, so Infinity loads it by
path exactly like ``laion/clap-htsat-unfused``. Meaningless semantically. ``--fused`` writes
the fused variant msearch must refuse; ``--full`` the full-size architecture of
``laion/clap-htsat-unfused`` (random weights, the same cost: for speed benchmarks).
Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import msearch  # noqa: F401  # its import hook keeps an installed torchvision from breaking transformers

SPECIAL = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
CORPUS = [
    "a dog barking in the distance",
    "a low hum, a high beep, static noise and a hiss",
    "a rising whistle, a falling whistle, rhythmic clicking, a ticking clock, a siren",
    "silence, rain on a roof, people talking, music playing",
]


def write_tokenizer(out_dir: Path) -> None:
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=400, min_frequency=1, special_tokens=SPECIAL)
    out_dir.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(out_dir))  # vocab.json + merges.txt
    RobertaTokenizerFast.from_pretrained(str(out_dir), model_max_length=512).save_pretrained(
        str(out_dir)
    )


def build(
    out_dir: Path, *, seed: int = 0, dim: int = 32, fused: bool = False, full: bool = False
) -> Path:
    import torch
    from transformers import (
        ClapAudioConfig,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapProcessor,
        ClapTextConfig,
        RobertaTokenizerFast,
    )

    write_tokenizer(out_dir)
    tokenizer = RobertaTokenizerFast.from_pretrained(str(out_dir))
    text_size = (
        {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12}
        if full
        else {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}
    )
    text = ClapTextConfig(
        vocab_size=len(tokenizer),
        **text_size,
        num_attention_heads=12 if full else 2,
        max_position_embeddings=514,  # RoBERTa's: 512 positions after the padding offset
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        projection_dim=dim,
    )
    tower = (
        {
            "hidden_size": 768,
            "patch_embeds_hidden_size": 96,
            "depths": [2, 2, 6, 2],
            "num_attention_heads": [4, 8, 16, 32],
        }
        if full
        else {
            "hidden_size": 32,
            "patch_embeds_hidden_size": 16,
            "depths": [1, 1],
            "num_attention_heads": [2, 2],
        }
    )
    audio = ClapAudioConfig(
        window_size=8,
        num_mel_bins=64,
        spec_size=256,
        patch_size=4,
        patch_stride=[4, 4],
        **tower,
        projection_dim=dim,
        enable_fusion=fused,
        fusion_type="aff_2d" if fused else None,
    )
    config = ClapConfig(
        text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=dim
    )
    torch.manual_seed(seed)
    model = ClapModel(config).eval()
    model.save_pretrained(str(out_dir), safe_serialization=True)
    extractor = ClapFeatureExtractor(
        feature_size=64,
        sampling_rate=48_000,
        hop_length=480,
        max_length_s=10,
        fft_window_size=1024,
        padding="repeatpad",
        truncation="fusion" if fused else "rand_trunc",
    )
    ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(str(out_dir))
    (out_dir / "msearch-tiny-clap.json").write_text(json.dumps({"seed": seed, "dim": dim}))
    return out_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--fused", action="store_true")
    parser.add_argument("--full", action="store_true", help="laion/clap-htsat-unfused's size")
    args = parser.parse_args()
    dim = 512 if args.full and args.dim == 32 else args.dim
    print(build(args.out_dir, seed=args.seed, dim=dim, fused=args.fused, full=args.full))


if __name__ == "__main__":
    main()
