"""Write a tiny random ColIdefics2 (Hugging Face format) for plumbing and parity tests.

    python scripts/make_tiny_colidefics2.py OUT_DIR [--seed 0]

Architecturally colpali-engine's ``ColIdefics2``: an Idefics2 (a SigLIP ViT, a perceiver
resampler that gives each page ``IMAGE_SEQ_LEN`` tokens, and a Mistral decoder) whose last
hidden states are projected to 128 dimensions and normalised per token. Two decoder layers
of width 64, two vision blocks of width 32 on pages of 56-112 px, a SentencePiece-like BPE
tokenizer with Idefics2's image and utterance tokens and its chat template, and an
Idefics2ImageProcessor. ``IMAGE_SEQ_LEN`` is not Idefics2's default (64), so a processor
that loses its saved settings fails. Meaningless semantically. Deterministic for a seed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from make_tiny_colpali import sentencepiece_bpe

import msearch  # noqa: F401  # its import hook keeps an installed torchvision from breaking transformers

SPECIAL = ["<unk>", "<s>", "</s>", "<fake_token_around_image>", "<image>", "<end_of_utterance>"]
CORPUS = [
    "User: Describe the image.",
    "Question: a bar chart of the quarterly revenue",
    "the saffron risotto recipe on page seven",
    "Assistant:",
]
IMAGE_SEQ_LEN = 16
# Idefics2's: "User: <text and images><end_of_utterance>\n" per message
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'].capitalize() }}"
    "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{ line['text'] }}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}"
    "<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


def build(out_dir: Path, *, seed: int = 0) -> Path:
    import torch
    from transformers import Idefics2Config, Idefics2ImageProcessor, LlamaTokenizerFast

    from msearch.embedding.colpali import mend_colpali_engine

    # saved by a processor that knows its settings, as the real checkpoints were
    mend_colpali_engine()
    from colpali_engine.models import ColIdefics2, ColIdefics2Processor

    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = LlamaTokenizerFast(
        tokenizer_object=sentencepiece_bpe(CORPUS, SPECIAL, vocab_size=200),
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<unk>",
    )
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL[3:]})
    processor = ColIdefics2Processor(
        image_processor=Idefics2ImageProcessor(
            do_image_splitting=False, size={"shortest_edge": 56, "longest_edge": 112}
        ),
        tokenizer=tokenizer,
        image_seq_len=IMAGE_SEQ_LEN,
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(out_dir)
    config = Idefics2Config(
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 112,
            "patch_size": 14,
        },
        perceiver_config={
            "hidden_size": 64,
            "resampler_n_latents": IMAGE_SEQ_LEN,
            "resampler_depth": 1,
            "resampler_n_heads": 2,
            "resampler_head_dim": 16,
            "num_key_value_heads": 1,
        },
        text_config={
            "model_type": "mistral",
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 512,
            "pad_token_id": tokenizer.pad_token_id,
        },
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        architectures=["ColIdefics2"],
    )
    torch.manual_seed(seed)
    ColIdefics2(config).eval().save_pretrained(out_dir)
    return out_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(build(args.out_dir, seed=args.seed))


if __name__ == "__main__":
    main()
