"""Indexing throughput through the orchestrator versus the model-only floor.

    python scripts/bench_index.py --n 200

Generates N 1920x1080 JPEGs, indexes them with a random full-size ViT-B/32 through the
real pipeline (detect, hash, decode, thumbnail, Infinity, Qdrant Edge, SQLite), then, in
the same run, times the same model on pre-decoded tensors at its best batch size.
Last line: {"n", "images_per_s", "floor_images_per_s", "ratio"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from make_vit_b32_random import build  # noqa: E402


def photo_like(i: int) -> Image.Image:
    """Smooth gradients, shapes and mild grain: compresses like a photo (~300 KB)."""
    rng = np.random.RandomState(i)
    y, x = np.mgrid[0:1080, 0:1920].astype(np.float32)
    base = np.stack(
        [
            (x / 1920) * rng.uniform(80, 255),
            (y / 1080) * rng.uniform(80, 255),
            np.full_like(x, rng.uniform(0, 255)),
        ],
        axis=-1,
    )
    base += rng.normal(0, 6, base.shape)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = int(rng.uniform(0, 1800)), int(rng.uniform(0, 1000))
        size = int(rng.uniform(40, 400))
        draw.ellipse((x0, y0, x0 + size, y0 + size), fill=tuple(rng.randint(0, 255, 3)))
    return img


class Floor:
    """The model alone: same weights, pre-decoded tensors, its best batch size."""

    def __init__(self, model_dir: Path, device: str, batches: tuple[int, ...]) -> None:
        import torch
        from transformers import CLIPModel

        self._torch = torch
        # What Infinity does: fp16 on CUDA, fp32 on CPU.
        self._dtype = torch.float16 if device == "cuda" else torch.float32
        self._device = device
        self._model = CLIPModel.from_pretrained(str(model_dir)).eval().to(device, self._dtype)
        rates = {b: self._rate(b, rounds=1) for b in batches}
        self.batch = max(rates, key=lambda b: rates[b])

    def _rate(self, batch: int, rounds: int) -> float:
        pixels = self._torch.randn(batch, 3, 224, 224, device=self._device, dtype=self._dtype)
        with self._torch.inference_mode():
            self._model.get_image_features(pixel_values=pixels)  # warm-up
            self._sync()
            started = time.perf_counter()
            for _ in range(rounds):
                self._model.get_image_features(pixel_values=pixels)
            self._sync()
        return batch * rounds / (time.perf_counter() - started)

    def _sync(self) -> None:
        if self._device == "cuda":
            self._torch.cuda.synchronize()

    def measure(self) -> float:
        return self._rate(self.batch, rounds=max(1, 96 // self.batch))


async def measure(
    model_dir: Path, files: list[Path], data_dir: Path, args: argparse.Namespace
) -> tuple[float, float, int]:
    """Alternate floor measurements with chunks of pipeline work, so both see the same
    machine (shared CPUs here drift by tens of percent within minutes)."""
    from msearch.config import load_settings
    from msearch.services import build_services

    settings = load_settings(
        None,
        data_dir=data_dir,
        embedding={"model": str(model_dir), "device": args.device, "batch_size": args.batch_size},
        performance={
            "decode_workers": args.decode_workers,
            "max_concurrent_files": max(64, 2 * args.batch_size),
        },
    )
    services = await build_services(settings)
    batches = (8, 16, 32, 64) if args.device == "cpu" else (32, 64, 128, 256)
    floor = Floor(model_dir, args.device, batches)
    try:
        warm = await services.orchestrator.batch_process_files(files[:8])  # model warm-up
        assert all(r.status == "indexed" for r in warm)
        work = files[8:]
        chunk = -(-len(work) // args.rounds)
        pipeline_s, floor_rates = 0.0, [floor.measure()]
        for start in range(0, len(work), chunk):
            started = time.perf_counter()
            outcomes = await services.orchestrator.batch_process_files(work[start : start + chunk])
            pipeline_s += time.perf_counter() - started
            failed = [r for r in outcomes if r.status != "indexed"]
            if failed:
                raise SystemExit(f"{len(failed)} files failed: {failed[0].error}")
            floor_rates.append(floor.measure())
        floor_rate = len(floor_rates) / sum(1 / r for r in floor_rates)  # harmonic mean
        print(f"floor samples (img/s): {[round(r, 1) for r in floor_rates]}", file=sys.stderr)
        return len(work) / pipeline_s, floor_rate, floor.batch
    finally:
        await services.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="pipeline chunks, each followed by a floor measurement",
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--decode-workers", type=int, default=2)
    parser.add_argument(
        "--model-dir", type=Path, default=ROOT / "build" / "bench-models" / "vit-b-32-random"
    )
    args = parser.parse_args()
    model_dir = build(args.model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        files = []
        for i in range(args.n + 8):
            path = folder / f"{i:05}.jpg"
            photo_like(i).save(path, "JPEG", quality=88)
            files.append(path)
        mb = sum(p.stat().st_size for p in files) / len(files) / 1e6
        print(f"generated {len(files)} 1920x1080 JPEGs, {mb:.2f} MB each", file=sys.stderr)
        rate, floor, batch = asyncio.run(measure(model_dir, files, Path(tmp) / "data", args))
    print(
        f"pipeline {rate:.2f} img/s, model floor {floor:.2f} img/s at batch {batch}",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "n": args.n,
                "device": args.device,
                "images_per_s": round(rate, 2),
                "floor_images_per_s": round(floor, 2),
                "ratio": round(rate / floor, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
