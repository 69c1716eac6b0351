"""Peak memory of hostile search-by-image uploads, decoded and embedded as the server does.

Each case runs in a fresh process: the model is loaded and warmed up, then the upload is
decoded (with the server's pixel limit) and embedded; the increase of the process's peak
RSS is what the upload cost. Prints one JSON line per case.

    .venv/bin/python scripts/bench_upload_memory.py --model demo
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import resource
import subprocess
import sys
from typing import Any

import msearch  # noqa: F401  (prepares torchvision's ops before transformers loads)

CASES = {
    # 191 bytes as a PNG: a 3x12000 strip (the processor would make 224x896000 floats)
    "strip_3x12000": (12000, 3, 1),
    "strip_3x120000": (120000, 3, 1),
    # a 24-megapixel PNG (just under performance.max_query_pixels) of one colour
    "png_24mp": (6000, 4000, 1),
    # three strips at once
    "three_strips": (12000, 3, 3),
}


def _png(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _one(model: str, case: str) -> dict[str, Any]:
    from PIL import Image

    from msearch.config import EmbeddingSettings, PerformanceSettings
    from msearch.embedding.infinity import InfinityEngine
    from msearch.media.images import decode_image

    width, height, copies = CASES[case]
    upload = _png(width, height)
    engine = InfinityEngine(EmbeddingSettings(model=model, device="cpu", timeout_s=300))
    await engine.start()
    limits = PerformanceSettings()
    await engine.embed_images([Image.new("RGB", (640, 480), (1, 2, 3))])  # warm up
    before = _peak_mb()

    async def search_by(data: bytes) -> None:
        decoded = await asyncio.to_thread(
            decode_image,
            data,
            max_pixels=limits.max_query_pixels,
            min_short=engine.input_size,
            min_long=engine.input_size,
        )
        await engine.embed_images([decoded.image])

    await asyncio.gather(*(search_by(upload) for _ in range(copies)))
    after = _peak_mb()
    await engine.stop()
    return {
        "case": case,
        "upload_bytes": len(upload),
        "pixels": width * height,
        "copies": copies,
        "peak_rss_increase_mb": round(after - before, 1),
        "baseline_peak_mb": round(before, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="demo")
    parser.add_argument("--case", choices=sorted(CASES), action="append")
    parser.add_argument("--one", choices=sorted(CASES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(asyncio.run(_one(args.model, args.one))))
        return
    for case in args.case or list(CASES):
        result = subprocess.run(
            [sys.executable, __file__, "--model", args.model, "--one", case],
            capture_output=True,
            text=True,
            check=True,
        )
        print(result.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
