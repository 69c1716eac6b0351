"""Train the small bilingual demo CLIP on synthetic captioned shapes.

    python scripts/train_demo_model.py OUT_DIR [--seed 0] [--steps 3200]

Renders a captioned set of coloured shapes (msearch.demo) as msearch's model sees them
(drawn at 64, 128 or 256 px, resized to 64 px with the image processor's bicubic filter),
builds a CLIP tokenizer whose vocabulary holds every English caption word and every Chinese
character as one token (Chinese is split a character at a time: no segmenter), and trains
a small transformers CLIPModel on captions in English and Chinese alike with the
contrastive loss (soft targets: captions of the same colour and shape are all positives;
each batch holds 4 images of each of 32 colours and shapes). ``--image-weight`` adds a
supervised image-image contrastive term; measured here, it lowers both text->image and
image->image retrieval (docs/benchmarks.md), so it is off. Deterministic for a seed; under
10 minutes on 2 CPU cores. Then calibrates: the score under which a text query's match is
no close match, from the scores of matching and other images of a fresh set in the
training's rendering (calibration.json, read by msearch). Writes a Hugging Face model
directory that Infinity loads by path, plus training.json (command, seed, losses, held-out
figures).
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
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

from clip_builder import byte_level_vocab, clip_config, write_tokenizer_and_processor  # noqa: E402

from msearch.demo import (  # noqa: E402
    COLOURS,
    SHAPES,
    ShapeSpec,
    caption,
    caption_zh,
    query,
    random_spec,
    render,
)

IMAGE_SIZE = 64
SOURCE_SIDES = (64, 128, 256)
MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
PER_CLASS = 4  # images of one colour and shape in a batch


def render_set(
    count: int, seed: int, variation: str | None = None, sides: tuple[int, ...] = SOURCE_SIDES
) -> tuple[torch.Tensor, list[ShapeSpec]]:
    """Images as the model sees them in msearch: drawn at one of ``sides`` (a picture in a
    library), then resized to 64 px with the bicubic filter of the CLIP image processor.
    A model trained on 64 px drawings alone fails on the same shapes drawn larger and
    resized: the edges differ."""
    rng = random.Random(seed)
    specs = [random_spec(rng) for _ in range(count)]
    pixels = np.stack(
        [np.asarray(as_model_sees(render(s, rng.choice(sides), rng, variation))) for s in specs]
    )
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous(), specs


def as_model_sees(image: Image.Image) -> Image.Image:
    if image.size == (IMAGE_SIZE, IMAGE_SIZE):
        return image
    return image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC)


def normalise(batch: torch.Tensor) -> torch.Tensor:
    return (batch.float() / 255.0 - MEAN) / STD


def class_ids(specs: list[ShapeSpec]) -> torch.Tensor:
    index = {(c, s): i for i, (c, s) in enumerate((c, s) for c in COLOURS for s in SHAPES)}
    return torch.tensor([index[(s.colour, s.shape)] for s in specs])


def build_model(out_dir: Path, seed: int) -> tuple[object, object]:
    from msearch.demo import vocabulary

    vocab, merges = byte_level_vocab(vocabulary())
    write_tokenizer_and_processor(out_dir, vocab, merges, image_size=IMAGE_SIZE, split_han=True)
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
def embed(
    model: object, tokenizer: object, images: torch.Tensor, texts: list[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    model.eval()  # type: ignore[attr-defined]
    image_emb = F.normalize(model.get_image_features(pixel_values=normalise(images)), dim=-1)  # type: ignore[attr-defined]
    tokens = tokenizer(texts, padding=True, return_tensors="pt")  # type: ignore[operator]
    text_emb = F.normalize(model.get_text_features(**tokens), dim=-1)  # type: ignore[attr-defined]
    model.train()  # type: ignore[attr-defined]
    return image_emb, text_emb


def class_queries(language: str) -> list[str]:
    return [query(c, s, language) for c in COLOURS for s in SHAPES]


@torch.no_grad()
def heldout_accuracy(model: object, tokenizer: object, seed: int) -> dict[str, float]:
    """On a held-out set (another seed, the held-out rendering): how often the top image
    of a 'colour shape' query (English, Chinese) is of that colour and shape, and the share
    of an image's 5 nearest other images of its colour and shape."""
    images, specs = render_set(480, seed + 1000, variation="heldout", sides=(256,))
    labels = class_ids(specs)
    report = {}
    for language in ("en", "zh"):
        image_emb, text_emb = embed(model, tokenizer, images, class_queries(language))
        best = (text_emb @ image_emb.T).argmax(dim=1)
        top1 = (labels[best] == torch.arange(text_emb.shape[0])).float().mean().item()
        report[f"heldout_text_to_image_top1_class_{language}"] = round(top1, 4)
    similar = image_emb @ image_emb.T
    similar.fill_diagonal_(-2)
    nearest = similar.topk(5, dim=1).indices
    precision = (labels[nearest] == labels[:, None]).float().mean().item()
    report["heldout_image_to_image_precision_at_5"] = round(precision, 4)
    return report


@torch.no_grad()
def calibrate(model: object, tokenizer: object, seed: int) -> dict[str, object]:
    """The relevance floor for text queries: the cosine under which an image is no close
    match. Measured on a fresh set in the training's rendering (not the held-out one the
    evaluation uses), over the class queries of both languages: the floor sits halfway
    between the matching images' 2nd percentile and the other images' 99.9th, or at the
    former where the two overlap (real matches come first)."""
    images, specs = render_set(960, seed + 2000)
    labels = class_ids(specs)
    scores = []
    query_labels = []
    for language in ("en", "zh"):
        image_emb, text_emb = embed(model, tokenizer, images, class_queries(language))
        scores.append(text_emb @ image_emb.T)
        query_labels.append(torch.arange(text_emb.shape[0]))
    all_scores = torch.cat(scores)
    match = torch.cat(query_labels)[:, None] == labels[None, :]
    matching = all_scores[match].quantile(0.02).item()
    others = all_scores[~match].quantile(0.999).item()
    floor = (matching + others) / 2 if matching > others else matching
    return {
        "text_floor": round(floor, 4),
        "matching_p2": round(matching, 4),
        "others_p99_9": round(others, 4),
        "images": len(specs),
        "seed": seed + 2000,
    }


def balanced_batch(
    by_class: list[torch.Tensor], batch: int, generator: torch.Generator
) -> torch.Tensor:
    """PER_CLASS images of each of batch / PER_CLASS colours and shapes: every image has
    positives in its batch, for both losses."""
    classes = torch.randperm(len(by_class), generator=generator)[: batch // PER_CLASS]
    picks = [
        members[torch.randint(0, len(members), (PER_CLASS,), generator=generator)]
        for members in (by_class[int(c)] for c in classes)
    ]
    return torch.cat(picks)


def augment(pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Sensor noise, each image its own amount: what a camera adds without changing what
    a picture shows (a blur would: a small star's points are a few pixels at 64 px)."""
    noise = torch.rand(len(pixels), 1, 1, 1, generator=generator) * 0.1
    return pixels + noise * torch.randn(pixels.shape, generator=generator)


def image_image_loss(
    image_embeds: torch.Tensor, same: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Supervised contrastive loss over the batch's images: each image's others of its
    colour and shape are its positives (images without one in the batch do not count)."""
    itself = torch.eye(len(same), dtype=torch.bool)
    logits = (image_embeds @ image_embeds.T / temperature).masked_fill(itself, -1e4)
    positives = same.masked_fill(itself, 0)
    counts = positives.sum(dim=1)
    has = counts > 0
    log_p = F.log_softmax(logits, dim=1)
    per_image = -(log_p * positives).sum(dim=1)[has] / counts[has]
    return per_image.mean()


def train(
    out_dir: Path,
    *,
    seed: int,
    steps: int,
    batch: int,
    samples: int,
    image_weight: float = 0.0,
    temperature: float = 0.07,
    threads: int = 2,
    log_every: int = 100,
) -> dict[str, object]:
    torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed)
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    model, tokenizer = build_model(out_dir, seed)
    images, specs = render_set(samples, seed)
    labels = class_ids(specs)
    caption_rng = random.Random(seed + 1)

    def describe(spec: ShapeSpec) -> str:  # half the captions in each language
        return (
            caption_zh(spec, caption_rng)
            if caption_rng.random() < 0.5
            else caption(spec, caption_rng)
        )

    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)  # type: ignore[attr-defined]
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser,
        lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))),
    )
    generator = torch.Generator().manual_seed(seed)
    by_class = [
        members for c in labels.unique() if len(members := torch.nonzero(labels == c).flatten())
    ]
    losses: list[float] = []
    model.train()  # type: ignore[attr-defined]
    for step in range(steps):
        idx = balanced_batch(by_class, batch, generator)
        batch_specs = [specs[i] for i in idx.tolist()]
        tokens = tokenizer(
            [describe(s) for s in batch_specs],  # type: ignore[operator]
            padding=True,
            return_tensors="pt",
        )
        pixels = augment(normalise(images[idx]), generator)
        out = model(
            input_ids=tokens["input_ids"],
            attention_mask=tokens["attention_mask"],  # type: ignore[operator]
            pixel_values=pixels,
        )
        same = (labels[idx][:, None] == labels[idx][None, :]).float()
        targets = same / same.sum(dim=1, keepdim=True)
        logits = out.logits_per_image
        text_image = (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
        loss = text_image
        if image_weight:
            loss = loss + image_weight * image_image_loss(out.image_embeds, same, temperature)
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
    calibration = calibrate(model, tokenizer, seed)
    report["calibration"] = calibration
    model.save_pretrained(str(out_dir), safe_serialization=True)  # type: ignore[attr-defined]
    (out_dir / "calibration.json").write_text(json.dumps(calibration, indent=2) + "\n")
    report["command"] = (
        f"python scripts/train_demo_model.py {out_dir} --seed {seed} "
        f"--steps {steps} --batch {batch} --samples {samples} "
        f"--image-weight {image_weight} --image-temperature {temperature}"
    )
    (out_dir / "training.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=3200)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--samples", type=int, default=24_000)
    parser.add_argument("--image-weight", type=float, default=0.0)
    parser.add_argument("--image-temperature", type=float, default=0.07)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    report = train(
        args.out_dir,
        seed=args.seed,
        steps=args.steps,
        batch=args.batch,
        samples=args.samples,
        image_weight=args.image_weight,
        temperature=args.image_temperature,
        threads=args.threads,
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
