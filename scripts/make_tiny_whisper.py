"""Write a random Whisper in Hugging Face format and converted for faster-whisper (CTranslate2).

    python scripts/make_tiny_whisper.py OUT_DIR [--size tiny|base|small] [--seed 0]

OUT_DIR/hf holds a ``WhisperForConditionalGeneration`` with its tokenizer and feature
extractor; OUT_DIR/ct2 the same weights converted by CTranslate2's own converter, with the
tokenizer and feature-extractor files faster-whisper reads beside them (without
``tokenizer.json`` it would download one). The tokenizer keeps Whisper's multilingual
special-token layout (51865 ids: language, task and timestamp tokens where faster-whisper
looks for them); its ordinary tokens are placeholders, so the text is meaningless.
``tiny`` is a few layers of 64 wide (plumbing and parity tests); ``base`` and ``small`` are
the real architectures with random weights (the same cost: for speed benchmarks).
Deterministic for a given seed; no download.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import msearch  # noqa: F401  # its import hook keeps an installed torchvision from breaking transformers

# Whisper's multilingual layout: 50257 ordinary tokens, then these, then 1501 timestamps.
ORDINARY = 50_257
LANGUAGES = [
    "en",
    "zh",
    "de",
    "es",
    "ru",
    "ko",
    "fr",
    "ja",
    "pt",
    "tr",
    "pl",
    "ca",
    "nl",
    "ar",
    "sv",
    "it",
    "id",
    "hi",
    "fi",
    "vi",
    "he",
    "uk",
    "el",
    "ms",
    "cs",
    "ro",
    "da",
    "hu",
    "ta",
    "no",
    "th",
    "ur",
    "hr",
    "bg",
    "lt",
    "la",
    "mi",
    "ml",
    "cy",
    "sk",
    "te",
    "fa",
    "lv",
    "bn",
    "sr",
    "az",
    "sl",
    "kn",
    "et",
    "mk",
    "br",
    "eu",
    "is",
    "hy",
    "ne",
    "mn",
    "bs",
    "kk",
    "sq",
    "sw",
    "gl",
    "mr",
    "pa",
    "si",
    "km",
    "sn",
    "yo",
    "so",
    "af",
    "oc",
    "ka",
    "be",
    "tg",
    "sd",
    "gu",
    "am",
    "yi",
    "lo",
    "uz",
    "fo",
    "ht",
    "ps",
    "tk",
    "nn",
    "mt",
    "sa",
    "lb",
    "my",
    "bo",
    "tl",
    "mg",
    "as",
    "tt",
    "haw",
    "ln",
    "ha",
    "ba",
    "jw",
    "su",
]
SPECIAL = [
    "<|endoftext|>",
    "<|startoftranscript|>",
    *(f"<|{code}|>" for code in LANGUAGES),
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nospeech|>",
    "<|notimestamps|>",
    *(f"<|{i * 0.02:.2f}|>" for i in range(1501)),
]
VOCAB = ORDINARY + len(SPECIAL)  # 51865
SIZES: dict[str, dict[str, int]] = {
    "tiny": {"d_model": 64, "layers": 2, "heads": 4, "ffn": 128},
    "base": {"d_model": 512, "layers": 6, "heads": 8, "ffn": 2048},
    "small": {"d_model": 768, "layers": 12, "heads": 12, "ffn": 3072},
}


def _ordinary_tokens() -> list[str]:
    """Byte-level BPE strings: the 256 single bytes, then short words made of letters."""
    from tokenizers.pre_tokenizers import ByteLevel

    alphabet = sorted(ByteLevel.alphabet())
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: list[str] = []
    size = 2
    while len(alphabet) + len(words) < ORDINARY:
        words.extend(
            ("Ġ" if len(words) % 2 else "") + _spell(i, size, letters)
            for i in range(min(len(letters) ** size, 40_000))
        )
        size += 1
    # the multilingual vocabulary's last ordinary token is the empty string: CTranslate2
    # tells a multilingual Whisper from an English-only one by it
    return [*(alphabet + words)[: ORDINARY - 1], ""]


def _spell(number: int, size: int, letters: str) -> str:
    out = []
    for _ in range(size):
        number, digit = divmod(number, len(letters))
        out.append(letters[digit])
    return "".join(out)


def write_tokenizer(out_dir: Path) -> None:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import WhisperTokenizerFast

    vocab = {token: i for i, token in enumerate(_ordinary_tokens())}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([AddedToken(token, normalized=False) for token in SPECIAL])
    assert tokenizer.get_vocab_size() == VOCAB
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out_dir / "tokenizer.json"))
    WhisperTokenizerFast(tokenizer_file=str(out_dir / "tokenizer.json")).save_pretrained(
        str(out_dir)
    )


def build_hf(out_dir: Path, *, size: str = "tiny", seed: int = 0) -> Path:
    import torch
    from transformers import (
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
    )

    write_tokenizer(out_dir)
    shape = SIZES[size]
    ids = {token: ORDINARY + i for i, token in enumerate(SPECIAL)}
    config = WhisperConfig(
        vocab_size=VOCAB,
        num_mel_bins=80,
        d_model=shape["d_model"],
        encoder_layers=shape["layers"],
        decoder_layers=shape["layers"],
        encoder_attention_heads=shape["heads"],
        decoder_attention_heads=shape["heads"],
        encoder_ffn_dim=shape["ffn"],
        decoder_ffn_dim=shape["ffn"],
        max_source_positions=1500,
        max_target_positions=448,
        pad_token_id=ids["<|endoftext|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|endoftext|>"],
        decoder_start_token_id=ids["<|startoftranscript|>"],
        suppress_tokens=[],
        begin_suppress_tokens=[],
    )
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    generation: Any = model.generation_config
    # a generation config derived from the model config is rewritten at save time
    generation._from_model_config = False
    generation.no_timestamps_token_id = ids["<|notimestamps|>"]
    generation.is_multilingual = True
    generation.lang_to_id = {f"<|{code}|>": ids[f"<|{code}|>"] for code in LANGUAGES}
    generation.task_to_id = {
        "transcribe": ids["<|transcribe|>"],
        "translate": ids["<|translate|>"],
    }
    model.save_pretrained(str(out_dir))
    WhisperFeatureExtractor(feature_size=80).save_pretrained(str(out_dir))
    return out_dir


def convert(hf_dir: Path, out_dir: Path) -> Path:
    from ctranslate2.converters import TransformersConverter

    class Converter(TransformersConverter):  # type: ignore[misc]
        # CTranslate2 4.8 passes ``dtype=``, which transformers before 4.56 rejects
        def load_model(self, model_class: Any, model_name_or_path: str, **kwargs: Any) -> Any:
            try:
                return super().load_model(model_class, model_name_or_path, **kwargs)
            except TypeError:
                kwargs["torch_dtype"] = kwargs.pop("dtype")
                return super().load_model(model_class, model_name_or_path, **kwargs)

    if out_dir.exists():
        shutil.rmtree(out_dir)
    Converter(str(hf_dir), copy_files=["tokenizer.json", "preprocessor_config.json"]).convert(
        str(out_dir), quantization=None
    )
    return out_dir


def build(out_dir: Path, *, size: str = "tiny", seed: int = 0) -> Path:
    hf = build_hf(out_dir / "hf", size=size, seed=seed)
    convert(hf, out_dir / "ct2")
    (out_dir / "build.json").write_text(json.dumps({"size": size, "seed": seed}))
    return out_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(build(args.out_dir, size=args.size, seed=args.seed))


if __name__ == "__main__":
    main()
