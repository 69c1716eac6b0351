"""Retrieval quality of a model through the real pipeline (orchestrator, Qdrant, HTTP API).

    python scripts/eval_retrieval.py [--model demo] [--per-class 10] [--seed 4242]

Generates a held-out library (a seed the model never saw, and a rendering it never saw:
rotated shapes on gradient backgrounds, slightly blurred) of every colour and shape but
eight, indexes it through /api/v1/files/batch-process and measures through
/api/v1/search, with the service's default settings:

* text -> image Recall@1/5/10 in English ("a red star") and Chinese ("一个红色的星形"): a
  query succeeds at k when an image of that colour and shape is among the first k; and
  Recall@1 again with ``min_score: -1`` (nothing left out), to show the relevance floor
  costs no real match;
* image -> image precision@5 and @10 (search by file_id: the share of the results with the
  query's colour and shape);
* for the eight colours and shapes the library lacks, in both languages: how many results
  a query gets by default (of 10) and how many the floor left out.

Last line: one JSON object with these figures.
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
from msearch.demo import COLOURS, SHAPES, query, write_library  # noqa: E402

LANGUAGES = ("en", "zh")
# One colour and shape per colour, the shapes in turn: what the library leaves out.
ABSENT = {(colour, SHAPES[i % len(SHAPES)]) for i, colour in enumerate(COLOURS)}


def _label(path: str) -> tuple[str, str]:
    colour, shape, _ = Path(path).name.split("-", 2)
    return colour, shape


async def _search(client: httpx.AsyncClient, text: str, **options: Any) -> dict[str, Any]:
    reply = await client.post("/api/v1/search/text", json={"query": text, "limit": 10, **options})
    reply.raise_for_status()
    return dict(reply.json())


async def _text_figures(client: httpx.AsyncClient, language: str) -> dict[str, float]:
    present = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in ABSENT]
    hits_at = {1: 0, 5: 0, 10: 0}
    uncut_top1 = 0
    for colour, shape in present:
        text = query(colour, shape, language)
        labels = [_label(r["path"]) for r in (await _search(client, text))["results"]]
        for k in hits_at:
            hits_at[k] += (colour, shape) in labels[:k]
        uncut = (await _search(client, text, min_score=-1))["results"]
        uncut_top1 += bool(uncut) and _label(uncut[0]["path"]) == (colour, shape)
    shown = weaker = 0
    for colour, shape in sorted(ABSENT):
        body = await _search(client, query(colour, shape, language))
        shown += len(body["results"])
        weaker += body["weaker"]
    return {
        f"recall_at_{k}_{language}": round(hits / len(present), 4) for k, hits in hits_at.items()
    } | {
        f"recall_at_1_{language}_uncut": round(uncut_top1 / len(present), 4),
        f"absent_results_{language}": round(shown / len(ABSENT), 2),
        f"absent_weaker_{language}": round(weaker / len(ABSENT), 2),
    }


async def evaluate(model: str, per_class: int, seed: int, image_queries: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        library = Path(tmp) / "heldout"
        written = write_library(
            library, per_class * len(COLOURS) * len(SHAPES), seed=seed, variation="heldout"
        )
        for path, spec in written:
            if (spec.colour, spec.shape) in ABSENT:
                path.unlink()
        written = [(p, s) for p, s in written if p.exists()]
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
                figures: dict[str, Any] = {}
                for language in LANGUAGES:
                    figures |= await _text_figures(client, language)
                by_path = {r["path"]: r["file_id"] for r in job["files"]}
                step = max(1, len(written) // image_queries)
                at_5, at_10 = [], []
                for path, spec in written[::step][:image_queries]:
                    body = (
                        await client.post(
                            "/api/v1/search/image",
                            json={"file_id": by_path[str(path.resolve())], "limit": 10},
                        )
                    ).json()
                    same = [_label(r["path"]) == (spec.colour, spec.shape) for r in body["results"]]
                    at_5.append(sum(same[:5]) / 5)
                    at_10.append(sum(same) / 10)
    return {
        "model": model,
        "images": len(written),
        "queries_per_language": len(COLOURS) * len(SHAPES) - len(ABSENT),
        "absent_queries_per_language": len(ABSENT),
        **figures,
        "image_precision_at_5": round(sum(at_5) / len(at_5), 4),
        "image_precision_at_10": round(sum(at_10) / len(at_10), 4),
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
