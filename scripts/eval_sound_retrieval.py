"""Sound retrieval quality of a model through the real pipeline (orchestrator, FFmpeg,
Qdrant, HTTP API).

    python scripts/eval_sound_retrieval.py [--model demo] [--per-class 8] [--seed 4242]

Writes a held-out library of synthetic sounds (a seed the model never heard, and a variation
it never heard: a tremolo over a louder background), indexes it through
/api/v1/files/batch-process and measures text -> audio Recall@1/5 through
/api/v1/search/text (``modalities: ["audio"]``): every caption of every class is a query,
which succeeds at k when a sound of its class is among the first k results.
Last line: {"model", "sounds", "queries", "recall_at_1", "recall_at_5"}.
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
from msearch.demo_sounds import CAPTIONS, CLASSES, write_sounds  # noqa: E402


def _kind(path: str) -> str:
    return Path(path).name.split("-", 1)[0]


async def evaluate(model: str, per_class: int, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        library = Path(tmp) / "heldout"
        written = write_sounds(library, per_class * len(CLASSES), seed=seed, variation="heldout")
        settings = load_settings(
            None,
            data_dir=Path(tmp) / "data",
            embedding={"model": "demo", "device": "cpu"},
            audio={"model": model},
            api={"allowed_roots": [library]},
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://localhost", timeout=120
            ) as client:
                reply = await client.post(
                    "/api/v1/files/batch-process", json={"paths": [str(library)]}
                )
                job = reply.json()
                if reply.status_code != 202:
                    raise SystemExit(f"indexing refused: {reply.text}")
                while (await client.get(job["status_url"])).json()["status"] != "finished":  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
                hits_at = {1: 0, 5: 0}
                queries = [(kind, text) for kind, texts in CAPTIONS.items() for text in texts]
                for kind, text in queries:
                    body = (
                        await client.post(
                            "/api/v1/search/text",
                            json={"query": text, "limit": 5, "modalities": ["audio"]},
                        )
                    ).json()
                    kinds = [_kind(r["path"]) for r in body["results"]]
                    for k in hits_at:
                        hits_at[k] += kind in kinds[:k]
    return {
        "model": model,
        "sounds": len(written),
        "queries": len(queries),
        "recall_at_1": round(hits_at[1] / len(queries), 4),
        "recall_at_5": round(hits_at[5] / len(queries), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--per-class", type=int, default=8)
    parser.add_argument("--seed", type=int, default=4242)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(evaluate(args.model, args.per_class, args.seed))))


if __name__ == "__main__":
    main()
