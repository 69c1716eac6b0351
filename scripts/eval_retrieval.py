"""Retrieval quality of a model through the real pipeline (orchestrator, Qdrant, HTTP API).

    python scripts/eval_retrieval.py [--model demo] [--per-class 10] [--seed 4242]

Generates a held-out library (a seed the model never saw, and a rendering it never saw:
rotated shapes on gradient backgrounds, slightly blurred), indexes it through
/api/v1/files/batch-process and measures, through /api/v1/search:
text -> image Recall@1/5/10 (a query "a <colour> <shape>" succeeds at k when an image of
that colour and shape is among the first k) and image -> image precision@10 (search by
file_id: the share of the 10 results with the query's colour and shape).
Last line: {"model", "images", "queries", "recall_at_1", "recall_at_5", "recall_at_10",
"image_precision_at_10"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from msearch.api import create_app  # noqa: E402
from msearch.config import load_settings  # noqa: E402
from msearch.demo import COLOURS, SHAPES, write_library  # noqa: E402


def _label(path: str) -> tuple[str, str]:
    colour, shape, _ = Path(path).name.split("-", 2)
    return colour, shape


async def evaluate(model: str, per_class: int, seed: int, image_queries: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        library = Path(tmp) / "heldout"
        written = write_library(
            library, per_class * len(COLOURS) * len(SHAPES), seed=seed, variation="heldout"
        )
        settings = load_settings(
            None,
            data_dir=Path(tmp) / "data",
            embedding={"model": model, "device": "cpu"},
            api={"allowed_roots": [library]},
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://localhost", timeout=120
            ) as client:
                job = (
                    await client.post("/api/v1/files/batch-process", json={"paths": [str(library)]})
                ).json()
                # polling the job endpoint, as a client would
                while (await client.get(job["status_url"])).json()["status"] != "finished":  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
                hits_at = {1: 0, 5: 0, 10: 0}
                queries = [(c, s) for c in COLOURS for s in SHAPES]
                for colour, shape in queries:
                    body = (
                        await client.post(
                            "/api/v1/search/text",
                            json={"query": f"a {colour} {shape}", "limit": 10},
                        )
                    ).json()
                    labels = [_label(r["path"]) for r in body["results"]]
                    for k in hits_at:
                        hits_at[k] += (colour, shape) in labels[:k]
                by_path = {r["path"]: r["file_id"] for r in job["files"]}
                step = max(1, len(written) // image_queries)
                precisions = []
                for path, spec in written[::step][:image_queries]:
                    body = (
                        await client.post(
                            "/api/v1/search/image",
                            json={"file_id": by_path[str(path.resolve())], "limit": 10},
                        )
                    ).json()
                    same = [_label(r["path"]) == (spec.colour, spec.shape) for r in body["results"]]
                    precisions.append(sum(same) / 10)
    return {
        "model": model,
        "images": len(written),
        "queries": len(queries),
        "recall_at_1": round(hits_at[1] / len(queries), 4),
        "recall_at_5": round(hits_at[5] / len(queries), 4),
        "recall_at_10": round(hits_at[10] / len(queries), 4),
        "image_precision_at_10": round(sum(precisions) / len(precisions), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--seed", type=int, default=4242)
    parser.add_argument("--image-queries", type=int, default=96)
    args = parser.parse_args()
    print(
        json.dumps(asyncio.run(evaluate(args.model, args.per_class, args.seed, args.image_queries)))
    )


if __name__ == "__main__":
    main()
