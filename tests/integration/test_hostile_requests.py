"""Hostile requests get a 4xx in the error envelope, never a 500."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from support.app import api_client
from support.paths import ROOT

from msearch.config import Settings
from msearch.embedding.infinity import InfinityEngine


@pytest.fixture
async def client(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine
) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(make_settings(api={"max_upload_mb": 1}), tiny_engine) as c:
        yield c


def _client_error(response: httpx.Response, status: int | None = None) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    if status is not None:
        assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] and body["message"]
    assert body["request_id"] == response.headers["x-request-id"]


async def test_reported_inputs_answer_4xx(client: httpx.AsyncClient, media_dir: Path) -> None:
    loop = media_dir / "loop"
    loop.mkdir()
    (loop / "self").symlink_to(loop)
    (media_dir / "a").symlink_to(media_dir / "b")
    (media_dir / "b").symlink_to(media_dir / "a")
    requests = [
        client.get("/api/v1/files", params={"folder": "a\x00b"}),
        client.post("/api/v1/search/text", json={"query": "x", "folder": "a\x00b"}),
        client.get("/api/v1/files", params={"offset": "99999999999999999999"}),
        client.get("/api/v1/files", params={"limit": "99999999999999999999"}),
        client.post("/api/v1/files/process", json={"path": "~nosuchuser/x.jpg"}),
        client.get("/api/v1/files", params={"folder": "~nosuchuser"}),
        client.post("/api/v1/files/process", json={"path": str(media_dir / ("x" * 300))}),
        client.post("/api/v1/files/batch-process", json={"paths": ["y" * 5000]}),
        client.post("/api/v1/files/batch-process", json={"paths": [str(media_dir / ("é" * 200))]}),
        client.post("/api/v1/files/batch-process", json={"paths": [str(media_dir / "a")]}),
        client.post("/api/v1/folders", json={"path": "x" * 300}),
        client.post("/api/v1/search/text", json={"query": "x", "offset": 10**30}),
    ]
    for request in requests:
        _client_error(await request)
    loop_batch = await client.post("/api/v1/files/batch-process", json={"paths": [str(loop)]})
    assert loop_batch.status_code in (202, 400), loop_batch.text  # nothing to index is 400


async def test_ancient_and_far_dates_are_plain_filters(client: httpx.AsyncClient) -> None:
    for after, before in (
        ("0001-01-01T00:00:00", None),
        (None, "9999-12-31T23:59:59"),
        ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59Z"),
    ):
        response = await client.post(
            "/api/v1/search/text", json={"query": "x", "taken_after": after, "taken_before": before}
        )
        assert response.status_code == 200, response.text


async def test_chunked_bodies_count_against_the_limit(client: httpx.AsyncClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):  # 2.5 MB, no Content-Length: the body streams in
            yield b"x" * (1 << 16)

    async def stream() -> AsyncIterator[bytes]:
        for chunk in chunks():
            yield chunk

    response = await client.post(
        "/api/v1/search/text", content=stream(), headers={"content-type": "application/json"}
    )
    _client_error(response, 413)
    small = await client.post("/api/v1/search/text", json={"query": "x"})
    assert small.status_code == 200, small.text


async def test_method_not_allowed_says_what_is(client: httpx.AsyncClient) -> None:
    response = await client.put("/api/v1/session")
    _client_error(response, 405)
    assert set(response.headers["allow"].split(", ")) >= {"GET", "POST", "DELETE"}
    response = await client.delete("/api/v1/files")
    _client_error(response, 405)
    assert response.headers["allow"] == "GET"


async def test_every_error_status_is_in_the_schema(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            documented = set(operation["responses"])
            assert {"400", "401", "403", "404", "413", "422", "429", "503"} <= documented, (
                method,
                path,
            )
            envelope = operation["responses"]["404"]["content"]["application/json"]["schema"]
            assert envelope["$ref"].endswith("/ErrorEnvelope")


def test_a_long_strip_upload_costs_little_memory(tiny_clip_dir: Path) -> None:
    """1 KB of PNG (3x120000) used to become ~1.3e8 floats in the model's processor."""
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench_upload_memory.py"),
            "--model",
            str(tiny_clip_dir),
            "--case",
            "strip_3x120000",
            "--case",
            "three_strips",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    for line in result.stdout.splitlines():
        measured = json.loads(line)
        assert measured["peak_rss_increase_mb"] < 64, measured
