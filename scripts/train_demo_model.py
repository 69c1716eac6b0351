"""Train the small demo CLIP on synthetic captioned shapes.

    python scripts/train_demo_model.py OUT_DIR [--seed 0] [--steps 1800]

Renders a captioned set of coloured shapes (msearch.demo), builds a CLIP tokenizer whose
vocabulary holds every caption word as one token, and trains a small transformers
CLIPModel with the contrastive loss (soft targets: captions of the same colour and shape
are all positives). Deterministic for a seed; about 8 minutes on 2 CPU cores. Writes a
Hugging Face model directory that Infinity loads by path, plus training.json (command,
seed, losses, held-out accuracy).
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
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

from clip_builder import byte_level_vocab, clip_config, write_tokenizer_and_processor  # noqa: E402

from msearch.demo import COLOURS, SHAPES, ShapeSpec, caption, random_spec, render  # noqa: E402

IMAGE_SIZE = 64
MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


def render_set(
    count: int, seed: int, variation: str | None = None
) -> tuple[torch.Tensor, list[ShapeSpec]]:
    """Images as the CLIP image processor will see them (square, resized to 64 px)."""
    rng = random.Random(seed)
    specs = [random_spec(rng) for _ in range(count)]
    pixels = np.stack([np.asarray(render(s, IMAGE_SIZE, rng, variation)) for s in specs])
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous(), specs


def normalise(batch: torch.Tensor) -> torch.Tensor:
    return (batch.float() / 255.0 - MEAN) / STD


def class_ids(specs: list[ShapeSpec]) -> torch.Tensor:
    index = {(c, s): i for i, (c, s) in enumerate((c, s) for c in COLOURS for s in SHAPES)}
    return torch.tensor([index[(s.colour, s.shape)] for s in specs])


def build_model(out_dir: Path, seed: int) -> tuple[object, object]:
    from msearch.demo import vocabulary

    vocab, merges = byte_level_vocab(vocabulary())
    write_tokenizer_and_processor(out_dir, vocab, merges, image_size=IMAGE_SIZE)
    from transformers import CLIPModel, CLIPTokenizerFast

    config = clip_config(
        len(vocab),
        text={
            "hidden_size": 128,
            "intermediate_size": 512,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
        },
        # 16 px patches: a 4x4 grid keeps training within minutes on 2 cores, and a shape
        # of the smallest size still fits in one patch.
        vision={
            "hidden_size": 128,
            "intermediate_size": 512,
            "num_hidden_layers": 4,
            "num_attention_heads": 4,
            "image_size": IMAGE_SIZE,
            "patch_size": 16,
        },
        projection_dim=128,
    )
    torch.manual_seed(seed)
    model = CLIPModel(config)
    tokenizer = CLIPTokenizerFast.from_pretrained(str(out_dir))
    return model, tokenizer


@torch.no_grad()
def heldout_accuracy(model: object, tokenizer: object, seed: int) -> dict[str, float]:
    """Text -> image on a held-out set (another seed, the held-out rendering): how often
    the top image of a 'colour shape' query is of that colour and shape."""
    images, specs = render_set(480, seed + 1000, variation="heldout")
    labels = class_ids(specs)
    model.eval()  # type: ignore[attr-defined]
    image_emb = F.normalize(model.get_image_features(pixel_values=normalise(images)), dim=-1)  # type: ignore[attr-defined]
    queries = [f"a {c} {s}" for c in COLOURS for s in SHAPES]
    tokens = tokenizer(queries, padding=True, return_tensors="pt")  # type: ignore[operator]
    text_emb = F.normalize(model.get_text_features(**tokens), dim=-1)  # type: ignore[attr-defined]
    best = (text_emb @ image_emb.T).argmax(dim=1)
    top1 = (labels[best] == torch.arange(len(queries))).float().mean().item()
    model.train()  # type: ignore[attr-defined]
    return {"heldout_text_to_image_top1_class": round(top1, 4)}


def train(
    out_dir: Path, *, seed: int, steps: int, batch: int, samples: int, log_every: int = 100
) -> dict[str, object]:
    torch.set_num_threads(2)
    random.seed(seed)
    np.random.seed(seed)
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    model, tokenizer = build_model(out_dir, seed)
    images, specs = render_set(samples, seed)
    labels = class_ids(specs)
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
        batch_specs = [specs[i] for i in idx.tolist()]
        tokens = tokenizer(
            [caption(s, caption_rng) for s in batch_specs],  # type: ignore[operator]
            padding=True,
            return_tensors="pt",
        )
        pixels = normalise(images[idx])
        out = model(
            input_ids=tokens["input_ids"],
            attention_mask=tokens["attention_mask"],  # type: ignore[operator]
            pixel_values=pixels,
        )
        same = (labels[idx][:, None] == labels[idx][None, :]).float()
        targets = same / same.sum(dim=1, keepdim=True)
        logits = out.logits_per_image
        loss = (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))  # type: ignore[attr-defined]
        losses.append(float(loss.detach()))
        if (step + 1) % log_every == 0:
            recent = sum(losses[-log_every:]) / log_every
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
        "loss_start": round(sum(losses[:window]) / window, 4),  # first tenth of the steps
        "loss_end": round(sum(losses[-window:]) / window, 4),  # last tenth
        "losses": [round(x, 4) for x in losses[:: max(1, steps // 100)]],
        "seconds": round(time.perf_counter() - started, 1),
        **heldout_accuracy(model, tokenizer, seed),
    }
    model.save_pretrained(str(out_dir), safe_serialization=True)  # type: ignore[attr-defined]
    report["command"] = (
        f"python scripts/train_demo_model.py {out_dir} --seed {seed} "
        f"--steps {steps} --batch {batch} --samples {samples}"
    )
    (out_dir / "training.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=1800)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--samples", type=int, default=24_000)
    args = parser.parse_args()
    report = train(
        args.out_dir, seed=args.seed, steps=args.steps, batch=args.batch, samples=args.samples
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
