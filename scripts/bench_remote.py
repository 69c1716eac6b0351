"""Embedding in-process versus through an Infinity server on the same machine.

    python scripts/bench_remote.py --model demo --images 256

Starts ``infinity_emb v2`` from ``build/infinity-server`` (``make test`` builds it) on the
model, then times, in one run and on the same inputs, msearch's two engines: images per
second in batches of 32, and the latency of single text queries (the query lanes). The
ratio says what HTTP, PNG encoding and JSON cost on top of the model. Last line: JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from msearch.embedding.base import EmbeddingEngine

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "build" / "infinity-server" / "bin" / "infinity_emb"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _images(n: int, side: int) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [
        Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8), "RGB")
        for _ in range(n)
    ]


async def _time(
    engine: EmbeddingEngine, images: list[Image.Image], queries: list[str]
) -> dict[str, float]:
    await engine.embed_images(images[:32])  # warm-up
    started = time.perf_counter()
    for start in range(0, len(images), 32):
        await engine.embed_images(images[start : start + 32])
    images_per_s = len(images) / (time.perf_counter() - started)
    lane = engine.for_queries()
    await lane.embed_texts(["warm-up"])
    latencies = []
    for query in queries:
        begun = time.perf_counter()
        await lane.embed_texts([query])
        latencies.append((time.perf_counter() - begun) * 1000)
    return {
        "images_per_s": round(images_per_s, 1),
        "query_ms_p50": round(statistics.median(latencies), 2),
    }


def _serve(source: str) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    server = subprocess.Popen(
        [
            str(SERVER),
            "v2",
            *("--model-id", source, "--port", str(port), "--host", "127.0.0.1"),
            *("--engine", "torch", "--device", "cpu", "--no-bettertransformer"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/models", timeout=1).status_code == 200:
                return server, port
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("the Infinity server did not come up")


async def _measure(model: str, url: str, n: int, side: int) -> dict[str, object]:
    from msearch.config import EmbeddingSettings
    from msearch.embedding.infinity import InfinityEngine
    from msearch.embedding.remote import RemoteInfinityEngine

    images = _images(n, side)
    queries = [f"a small red star number {i}" for i in range(50)]
    local = InfinityEngine(EmbeddingSettings(model=model, device="cpu"))
    await local.start()
    in_process = await _time(local, images, queries)
    await local.stop()
    remote = RemoteInfinityEngine(EmbeddingSettings(model=model, url=url))
    await remote.start()
    over_http = await _time(remote, images, queries)
    await remote.stop()
    return {
        "model": model,
        "images": n,
        "side": side,
        "in_process": in_process,
        "remote": over_http,
        "images_ratio": round(over_http["images_per_s"] / in_process["images_per_s"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="demo")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--side", type=int, default=224)
    args = parser.parse_args()

    from msearch.embedding.models import resolve_model

    server, port = _serve(resolve_model(args.model))
    try:
        report = asyncio.run(
            _measure(args.model, f"http://127.0.0.1:{port}", args.images, args.side)
        )
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
