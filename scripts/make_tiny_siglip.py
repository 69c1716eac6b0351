"""Write a tiny random multilingual SigLIP (Hugging Face format) for plumbing and parity tests.

    python scripts/make_tiny_siglip.py OUT_DIR [--seed 0]

Architecturally a real ``SiglipModel`` like ``google/siglip-base-patch16-256-multilingual``
(text tower pooled at its *last* position, a 64-token context, a ViT image tower), with a
fast tokenizer that reads English words and unsegmented Chinese a character at a time
(every CJK unified ideograph is a token) and ends each text with ``</s>`` as SigLIP's own
does, and a ``SiglipImageProcessor``, so Infinity loads it by path like the downloaded
checkpoint. Meaningless semantically. Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import msearch  # noqa: F401  # its import hook keeps an installed torchvision from breaking transformers

SPECIAL = ["<pad>", "</s>", "<unk>"]
WORDS = ["a", "red", "star", "blue", "circle", "photo", "of", "the", "on", "grey", "background"]
CONTEXT = 64  # the multilingual checkpoint's text context


def vocabulary() -> list[str]:
    ascii_tokens = [chr(c) for c in range(33, 127)]
    ideographs = [chr(c) for c in range(0x4E00, 0xA000)]
    return list(dict.fromkeys([*SPECIAL, *WORDS, *ascii_tokens, *ideographs, "，", "。"]))


def build(out_dir: Path, *, seed: int = 0) -> Path:
    import torch
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import (
        PreTrainedTokenizerFast,
        SiglipConfig,
        SiglipImageProcessor,
        SiglipModel,
        SiglipProcessor,
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    tokens = vocabulary()
    backend = Tokenizer(models.WordLevel({t: i for i, t in enumerate(tokens)}, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(r"\p{Han}"), "isolated"), pre_tokenizers.WhitespaceSplit()]
    )
    backend.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", tokens.index("</s>"))]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=CONTEXT,
    )
    config = SiglipConfig(
        text_config={
            "vocab_size": len(tokens),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": CONTEXT,
            "pad_token_id": tokens.index("<pad>"),
            "eos_token_id": tokens.index("</s>"),
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
    )
    torch.manual_seed(seed)
    SiglipModel(config).eval().save_pretrained(str(out_dir), safe_serialization=True)
    image_processor = SiglipImageProcessor(size={"height": 32, "width": 32})
    SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(
        str(out_dir)
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
