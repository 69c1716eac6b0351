"""Train the small demo CLAP on synthetic captioned sounds.

    python scripts/train_demo_clap.py OUT_DIR [--seed 0] [--steps 600]

Synthesises captioned sounds of eight classes (msearch.demo_sounds: a low hum, a high beep,
static noise, rising and falling whistles, rhythmic clicking, a siren, silence) with varied
pitch, loudness, duration and background noise, tiles each to the 10-second window msearch
embeds (as msearch does with short sounds), and trains a small unfused transformers
ClapModel with the contrastive loss (soft targets: captions of the same class are all
positives). The tokenizer is a byte-level BPE trained on the captions, so every caption word
is one token. Deterministic for a seed; a few minutes on 2 CPU cores. Writes a Hugging Face
model directory Infinity loads by path, plus training.json (command, seed, losses,
held-out text->audio top-1 on another seed with a tremolo training never heard).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from msearch.demo_sounds import (  # noqa: E402
    CAPTIONS,
    CLASSES,
    RATE,
    caption,
    random_spec,
    synthesise,
    vocabulary,
)

WINDOW_S = 10.0
SPECIAL = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def build(out_dir: Path, seed: int) -> tuple[object, object, object]:
    from tokenizers import ByteLevelBPETokenizer
    from transformers import (
        ClapAudioConfig,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapProcessor,
        ClapTextConfig,
        RobertaTokenizerFast,
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    corpus = [c for captions in CAPTIONS.values() for c in captions] * 4 + vocabulary()
    bpe.train_from_iterator(corpus, vocab_size=600, min_frequency=1, special_tokens=SPECIAL)
    bpe.save_model(str(out_dir))
    tokenizer = RobertaTokenizerFast.from_pretrained(str(out_dir), model_max_length=512)
    extractor = ClapFeatureExtractor(
        feature_size=64,
        sampling_rate=RATE,
        # 25 columns a second: the 10 s window fits the 128-px spectrogram image below
        hop_length=1920,
        max_length_s=int(WINDOW_S),
        fft_window_size=2048,
        padding="repeatpad",
        truncation="rand_trunc",
    )
    processor = ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer)
    processor.save_pretrained(str(out_dir))
    text = ClapTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        projection_dim=64,
    )
    # A 128-px spectrogram image (the 10 s window at 40 ms a column) instead of HTSAT's 256:
    # a quarter of the tokens, and these sounds need no finer time (clicks stay apart).
    audio = ClapAudioConfig(
        window_size=8,
        num_mel_bins=64,
        spec_size=128,
        patch_size=4,
        patch_stride=[4, 4],
        hidden_size=64,
        patch_embeds_hidden_size=32,
        depths=[1, 1],
        num_attention_heads=[2, 4],
        projection_dim=64,
        enable_fusion=False,
    )
    config = ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=64)
    torch.manual_seed(seed)
    return ClapModel(config), tokenizer, extractor


def tiled(samples: np.ndarray) -> np.ndarray:
    """A sound shorter than a window, repeated to fill it (what msearch hands the model)."""
    window = int(WINDOW_S * RATE)
    repeats = -(-window // max(1, samples.size))
    return np.tile(samples, repeats)[:window]


def features_of(
    extractor: object, count: int, seed: int, variation: str | None = None
) -> tuple[torch.Tensor, list[str]]:
    rng = random.Random(seed)
    specs = [random_spec(rng, CLASSES[i % len(CLASSES)]) for i in range(count)]
    rows = []
    for spec in specs:
        clip = tiled(synthesise(spec, rng, variation))
        out = extractor(clip, sampling_rate=RATE, return_tensors="pt")  # type: ignore[operator]
        rows.append(out["input_features"][0])
    return torch.stack(rows), [s.kind for s in specs]


@torch.no_grad()
def heldout_top1(model: object, tokenizer: object, extractor: object, seed: int) -> float:
    """Text -> audio on held-out sounds (another seed, the tremolo variation): how often the
    top sound for each caption is of the caption's class."""
    feats, kinds = features_of(extractor, 8 * 12, seed + 1000, variation="heldout")
    model.eval()  # type: ignore[attr-defined]
    audio = F.normalize(model.get_audio_features(input_features=feats), dim=-1)  # type: ignore[attr-defined]
    queries = [(kind, c) for kind, captions in CAPTIONS.items() for c in captions]
    tokens = tokenizer([c for _, c in queries], padding=True, return_tensors="pt")  # type: ignore[operator]
    text = F.normalize(model.get_text_features(**tokens), dim=-1)  # type: ignore[attr-defined]
    best = (text @ audio.T).argmax(dim=1).tolist()
    model.train()  # type: ignore[attr-defined]
    return sum(kinds[b] == kind for b, (kind, _) in zip(best, queries, strict=True)) / len(queries)


def train(out_dir: Path, *, seed: int, steps: int, batch: int, samples: int) -> dict[str, object]:
    torch.set_num_threads(2)
    random.seed(seed)
    np.random.seed(seed)
    started = time.perf_counter()
    model, tokenizer, extractor = build(out_dir, seed)
    feats, kinds = features_of(extractor, samples, seed)
    labels = torch.tensor([CLASSES.index(k) for k in kinds])
    print(f"{samples} sounds ready ({time.perf_counter() - started:.0f}s)", file=sys.stderr)
    caption_rng = random.Random(seed + 1)
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)  # type: ignore[attr-defined]
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser,
        lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))),
    )
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    model.train()  # type: ignore[attr-defined]
    for step in range(steps):
        idx = torch.randint(0, samples, (batch,), generator=generator)
        batch_kinds = [kinds[i] for i in idx.tolist()]
        texts = [caption(random_spec(caption_rng, k), caption_rng) for k in batch_kinds]
        tokens = tokenizer(texts, padding=True, return_tensors="pt")  # type: ignore[operator]
        out = model(
            input_ids=tokens["input_ids"],
            attention_mask=tokens["attention_mask"],
            input_features=feats[idx],
        )
        same = (labels[idx][:, None] == labels[idx][None, :]).float()
        targets = same / same.sum(dim=1, keepdim=True)
        logits = out.logits_per_audio
        loss = (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(float(loss.detach()))
        if (step + 1) % 50 == 0:
            recent = sum(losses[-50:]) / 50
            print(
                f"step {step + 1}/{steps} loss {recent:.3f} ({time.perf_counter() - started:.0f}s)",
                file=sys.stderr,
            )
    window = max(1, steps // 10)
    report: dict[str, object] = {
        "seed": seed,
        "steps": steps,
        "batch": batch,
        "samples": samples,
        "loss_start": round(sum(losses[:window]) / window, 4),
        "loss_end": round(sum(losses[-window:]) / window, 4),
        "losses": [round(x, 4) for x in losses[:: max(1, steps // 50)]],
        "heldout_text_to_audio_top1_class": round(
            heldout_top1(model, tokenizer, extractor, seed), 4
        ),
        "seconds": round(time.perf_counter() - started, 1),
    }
    model.save_pretrained(str(out_dir), safe_serialization=True)  # type: ignore[attr-defined]
    report["command"] = (
        f"python scripts/train_demo_clap.py {out_dir} --seed {seed} --steps {steps} "
        f"--batch {batch} --samples {samples}"
    )
    (out_dir / "training.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--samples", type=int, default=960)
    args = parser.parse_args()
    report = train(
        args.out_dir, seed=args.seed, steps=args.steps, batch=args.batch, samples=args.samples
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
