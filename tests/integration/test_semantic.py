"""Search finds what the words say: the shipped demo model, end to end through HTTP,
on a held-out library (unseen seed and rendering)."""

from __future__ import annotations

import asyncio
import io
import random
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from support.app import api_client, wait_for

from msearch.config import load_settings
from msearch.demo import COLOURS, SHAPES, ShapeSpec, render, write_library

PER_CLASS = 3


def _label(path: str) -> tuple[str, str]:
    colour, shape, _ = Path(path).name.split("-", 2)
    return colour, shape


@pytest.fixture(scope="module")
async def demo(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[httpx.AsyncClient, Path]]:
    root = tmp_path_factory.mktemp("semantic")
    library = root / "library"
    write_library(library, PER_CLASS * len(COLOURS) * len(SHAPES), seed=31337, variation="heldout")
    settings = load_settings(
        None,
        data_dir=root / "data",
        embedding={"model": "demo", "device": "cpu"},
        api={"allowed_roots": [library]},
    )
    async with api_client(settings, None) as client:
        job = (
            await client.post("/api/v1/files/batch-process", json={"paths": [str(library)]})
        ).json()

        async def finished() -> bool:
            return bool((await client.get(job["status_url"])).json()["status"] == "finished")

        await wait_for(finished, limit_s=300)
        yield client, library


async def test_colour_and_shape_queries_find_a_match_first(
    demo: tuple[httpx.AsyncClient, Path],
) -> None:
    client, _ = demo
    queries = [(c, s) for c in COLOURS for s in SHAPES]
    replies = await asyncio.gather(
        *[
            client.post("/api/v1/search/text", json={"query": f"a {c} {s}", "limit": 1})
            for c, s in queries
        ]
    )
    firsts = [_label(r.json()["results"][0]["path"]) for r in replies]
    correct = sum(first == query for first, query in zip(firsts, queries, strict=True))
    assert correct / len(queries) >= 0.9, list(zip(queries, firsts, strict=True))


async def test_other_phrasings_work_too(demo: tuple[httpx.AsyncClient, Path]) -> None:
    client, _ = demo
    phrasings = {
        "a picture of a purple star": ("purple", "star"),
        "small green triangle on a grey background": ("green", "triangle"),
        "a yellow ring in the corner": ("yellow", "ring"),
        "an orange cross": ("orange", "cross"),
    }
    for query, expected in phrasings.items():
        body = (await client.post("/api/v1/search/text", json={"query": query, "limit": 3})).json()
        assert expected in [_label(r["path"]) for r in body["results"]], query


async def test_an_example_image_finds_its_colour_and_shape(
    demo: tuple[httpx.AsyncClient, Path],
) -> None:
    client, _ = demo
    rng = random.Random(99)
    examples = [
        ShapeSpec(c, s, "large", "center", "grey")
        for c, s in [
            ("red", "star"),
            ("blue", "square"),
            ("green", "circle"),
            ("black", "cross"),
            ("orange", "triangle"),
            ("purple", "ring"),
        ]
    ]
    hits = 0
    for spec in examples:
        upload = io.BytesIO()
        render(spec, 256, rng).save(upload, "PNG")
        body = (
            await client.post(
                "/api/v1/search/image",
                files={"file": ("q.png", upload.getvalue())},
                data={"limit": "3"},
            )
        ).json()
        labels = [_label(r["path"]) for r in body["results"]]
        hits += labels[0] == (spec.colour, spec.shape)
    assert hits >= len(examples) - 1


async def test_more_like_this_returns_the_same_class_first(
    demo: tuple[httpx.AsyncClient, Path],
) -> None:
    client, _ = demo
    listing = (await client.get("/api/v1/files", params={"limit": 1000})).json()
    sample = listing["files"][:: max(1, len(listing["files"]) // 24)]
    hits = 0
    for record in sample:
        body = (
            await client.post(
                "/api/v1/search/image", json={"file_id": record["file_id"], "limit": 1}
            )
        ).json()
        hits += _label(body["results"][0]["path"]) == _label(record["path"])
    assert hits / len(sample) >= 0.8


async def test_filters_hold(demo: tuple[httpx.AsyncClient, Path]) -> None:
    client, library = demo
    videos = (
        await client.post(
            "/api/v1/search/text", json={"query": "a red circle", "media_types": ["video"]}
        )
    ).json()
    assert videos["results"] == []
    images = (
        await client.post(
            "/api/v1/search/text",
            json={"query": "a red circle", "media_types": ["image"], "limit": 5},
        )
    ).json()
    assert len(images["results"]) == 5
    folder = next(p for p in sorted(library.iterdir()) if p.is_dir())
    inside = (
        await client.post(
            "/api/v1/search/text",
            json={"query": "a red circle", "folder": str(folder), "limit": 50},
        )
    ).json()
    assert inside["results"]
    assert all(Path(r["path"]).parent == folder for r in inside["results"])
