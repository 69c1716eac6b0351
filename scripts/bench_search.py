"""Search latency and recall at scale.

    python scripts/bench_search.py --n 100000

Loads N clustered 512-d vectors (as indexed images) into a data directory, then measures:
text-search latency through the HTTP API of a real `msearch serve` (random full-size
ViT-B/32 text tower, Qdrant Edge, SQLite enrichment); vector-search latency alone on Qdrant
Edge after HNSW optimisation, with recall@10 against exact brute force; and the same
vector search on qdrant-client local mode. Last line: {"n", "http_p50_ms", "http_p95_ms",
"vector_p50_ms", "vector_p95_ms", "recall_at_10", "local_mode_vector_p95_ms"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from make_vit_b32_random import build  # noqa: E402

DIM = 512


def clustered(n: int, seed: int = 0, clusters: int = 200) -> np.ndarray:
    """Photos cluster (same places, people, events): Gaussian blobs on the sphere."""
    rng = np.random.RandomState(seed)
    centres = rng.randn(clusters, DIM)
    data = centres[rng.randint(0, clusters, n)] + rng.randn(n, DIM) * 0.35
    return (data / np.linalg.norm(data, axis=1, keepdims=True)).astype(np.float32)


def percentiles(samples: list[float]) -> tuple[float, float]:
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 95))


async def load(settings: object, model_id: str, vectors: np.ndarray) -> None:
    from msearch.embedding.models import resolve_model
    from msearch.services import open_adapter
    from msearch.store.records import FileRecord
    from msearch.store.vectors import collection_name

    adapter, lock = await open_adapter(settings)  # type: ignore[arg-type]
    try:
        collection = collection_name(Path(model_id).name, resolve_model(model_id), DIM)
        await adapter.activate_model(Path(model_id).name, collection, DIM)
        for start in range(0, len(vectors), 2000):
            chunk = vectors[start : start + 2000]
            records = [
                FileRecord(
                    id=f"{i:08x}",
                    path=f"/lib/{i % 97}/{i}.jpg",
                    folder=f"/lib/{i % 97}",
                    media_type="image",
                    mime="image/jpeg",
                )
                for i in range(start, start + len(chunk))
            ]
            await adapter.import_indexed(records, [list(map(float, v)) for v in chunk])
        started = time.perf_counter()
        await adapter.optimize()
        print(f"HNSW optimise: {time.perf_counter() - started:.1f}s", file=sys.stderr)
    finally:
        await adapter.close()
        lock.release()


async def vector_latency(
    store: object, collection: str, queries: np.ndarray, data: np.ndarray
) -> tuple[list[float], float]:
    latencies, recalls = [], []
    for q in queries:
        started = time.perf_counter()
        hits = await store.search(collection, list(map(float, q)), limit=10)  # type: ignore[attr-defined]
        latencies.append((time.perf_counter() - started) * 1000)
        exact = set(np.argsort(-(data @ q))[:10])
        recalls.append(len({int(h.payload["file_id"], 16) for h in hits} & exact) / 10)
    return latencies, float(np.mean(recalls))


def http_latency(data_dir: Path, model_dir: Path, queries: int) -> list[float]:
    import httpx

    env = {
        **os.environ,
        "MSEARCH_DATA_DIR": str(data_dir),
        "MSEARCH_EMBEDDING__MODEL": str(model_dir),
        "MSEARCH_API__PORT": "8765",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "msearch", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = "http://127.0.0.1:8765"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        words = [
            "dog",
            "beach",
            "sunset",
            "red car",
            "mountain lake",
            "birthday cake",
            "city at night",
            "a cat on a sofa",
            "snow",
            "forest path",
        ]
        latencies = []
        with httpx.Client(base_url=url, timeout=30) as client:
            for i in range(queries + 5):
                started = time.perf_counter()
                response = client.post(
                    "/api/v1/search/text",
                    json={"query": f"a photo of {words[i % len(words)]}", "limit": 20},
                )
                response.raise_for_status()
                assert len(response.json()["results"]) == 20
                if i >= 5:  # first requests warm the model up
                    latencies.append((time.perf_counter() - started) * 1000)
        return latencies
    finally:
        server.terminate()
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--model-dir", type=Path, default=ROOT / "build" / "bench-models" / "vit-b-32-random"
    )
    args = parser.parse_args()
    model_dir = build(args.model_dir)
    data = clustered(args.n)
    rng = np.random.RandomState(1)
    queries = data[rng.randint(0, args.n, args.queries)] + rng.randn(args.queries, DIM) * 0.02
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    from msearch.config import QdrantSettings, load_settings
    from msearch.embedding.models import resolve_model
    from msearch.store.qdrant_edge import EdgeVectorStore
    from msearch.store.qdrant_remote import RemoteVectorStore
    from msearch.store.vectors import collection_name

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        settings = load_settings(None, data_dir=data_dir, embedding={"model": str(model_dir)})
        started = time.perf_counter()
        asyncio.run(load(settings, str(model_dir), data))
        print(f"loaded {args.n} vectors in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        collection = collection_name(model_dir.name, resolve_model(str(model_dir)), DIM)

        async def edge() -> tuple[list[float], float]:
            store = EdgeVectorStore(data_dir / "vectors", QdrantSettings())
            try:
                return await vector_latency(store, collection, queries, data)
            finally:
                await store.close()

        vector_ms, recall = asyncio.run(edge())
        http_ms = http_latency(data_dir, model_dir, min(args.queries, 100))

    async def local_mode() -> list[float]:
        from msearch.store.records import VectorPoint
        from msearch.store.vectors import point_id

        store = RemoteVectorStore.connect(QdrantSettings(url=":memory:"))
        await store.ensure_collection("bench", DIM)
        for start in range(0, args.n, 5000):
            await store.upsert(
                "bench",
                [
                    VectorPoint(
                        point_id(f"{i:08x}", 0), list(map(float, data[i])), {"file_id": f"{i:08x}"}
                    )
                    for i in range(start, min(args.n, start + 5000))
                ],
            )
        latencies, _ = await vector_latency(store, "bench", queries[:50], data)
        await store.close()
        return latencies

    local_ms = asyncio.run(local_mode())
    http_p50, http_p95 = percentiles(http_ms)
    vec_p50, vec_p95 = percentiles(vector_ms)
    print(
        json.dumps(
            {
                "n": args.n,
                "http_p50_ms": round(http_p50, 2),
                "http_p95_ms": round(http_p95, 2),
                "vector_p50_ms": round(vec_p50, 2),
                "vector_p95_ms": round(vec_p95, 2),
                "recall_at_10": round(recall, 4),
                "local_mode_vector_p95_ms": round(percentiles(local_ms)[1], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
