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
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from clip_builder import TINY_TOWER, TINY_VISION
from make_tiny_chinese_clip import SPECIAL as BERT_SPECIAL
from make_tiny_chinese_clip import vocabulary as chinese_clip_vocabulary

import msearch  # noqa: F401  # its import hook keeps an installed torchvision from breaking transformers

SPECIAL = ["<pad>", "</s>", "<unk>"]
CONTEXT = 64  # the multilingual checkpoint's text context


def vocabulary() -> list[str]:
    """Chinese-CLIP's tiny vocabulary (ASCII, a few words, every CJK ideograph), with
    SigLIP's special tokens instead of BERT's."""
    return list(dict.fromkeys([*SPECIAL, *chinese_clip_vocabulary()[len(BERT_SPECIAL) :]]))


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
            **TINY_TOWER,
            "max_position_embeddings": CONTEXT,
            "pad_token_id": tokens.index("<pad>"),
            "eos_token_id": tokens.index("</s>"),
        },
        vision_config=TINY_VISION,
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
