"""Enhancement time per image at several sizes, through the real RealESRGANer / GFPGANer.

    python scripts/bench_enhance.py --sizes 128 256 512 --device cpu

Weights are random (scripts/make_enhance_weights.py; the architectures are the real ones,
so the time is the real time). Each model is loaded and warmed up on a 64 px image first;
every size is then timed ``--repeat`` times (best kept). GFPGAN runs with
``only_center_face`` (random detector weights find faces everywhere).
Last line: {"device", "results": {"<model>@<size>": seconds, ...}}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from make_enhance_weights import build  # noqa: E402

from msearch.config import EnhancementSettings  # noqa: E402
from msearch.media.enhance import ImageEnhancer  # noqa: E402


def photo(size: int, seed: int) -> Image.Image:
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = np.stack([x * 200, y * 200, np.full_like(x, rng.uniform(0, 255))], axis=-1)
    base += rng.normal(0, 8, base.shape)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


async def measure(weights: Path, args: argparse.Namespace) -> dict[str, float]:
    results: dict[str, float] = {}
    variants = [(m, False) for m in args.models] + ([(args.models[-1], True)] if args.faces else [])
    for model, faces in variants:
        settings = EnhancementSettings(
            enabled=True,
            weights_dir=weights,
            model=model,
            tile=args.tile,
            face_restore=faces,
            only_center_face=faces,
        )
        enhancer = ImageEnhancer(settings, device=args.device, target_side=224)
        label = f"GFPGAN+{model}" if faces else model
        try:
            _, warm = await enhancer.enhance(photo(64, 0))
            if not warm.applied:
                raise SystemExit(f"{label}: {warm.reason}")
            for size in args.sizes:
                best = float("inf")
                for repeat in range(args.repeat):
                    started = time.perf_counter()
                    _, done = await enhancer.enhance(photo(size, repeat + 1))
                    assert done.applied, done.reason
                    best = min(best, time.perf_counter() - started)
                results[f"{label}@{size}"] = round(best, 2)
                print(f"{label} at {size}px: {best:.2f}s", file=sys.stderr)
        finally:
            enhancer.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--models", nargs="+", default=["RealESRGAN_x4plus", "RealESRGAN_x2plus"])
    parser.add_argument("--faces", action="store_true", help="also time GFPGAN")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--weights", type=Path, default=ROOT / "build" / "bench-models" / "enhance-weights"
    )
    args = parser.parse_args()
    weights = build(args.weights)
    results = asyncio.run(measure(weights, args))
    print(json.dumps({"device": args.device, "tile": args.tile, "results": results}))


if __name__ == "__main__":
    main()
