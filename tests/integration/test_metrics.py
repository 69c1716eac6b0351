"""GET /metrics in the Prometheus text format, read back with prometheus_client's own
parser while the real service indexes and searches."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from support.app import api_client, wait_for
from support.media_factory import noise

from msearch.config import Settings
from msearch.embedding.infinity import InfinityEngine

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def _scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_follow_indexing_and_search(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine, media_dir: Path
) -> None:
    for i in range(3):
        noise(40, 40, seed=i).save(media_dir / f"{i}.png")
    (media_dir / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(60))
    (media_dir / "notes.txt").write_text("not media")
    async with api_client(make_settings(), tiny_engine) as client:
        before = await _scrape(client)
        job = (
            await client.post("/api/v1/files/batch-process", json={"paths": [str(media_dir)]})
        ).json()

        async def finished() -> bool:
            return bool((await client.get(job["status_url"])).json()["status"] == "finished")

        await wait_for(finished)
        assert (
            await client.post("/api/v1/search/text", json={"query": "noise"})
        ).status_code == 200
        upload = io.BytesIO()
        noise(30, 30).save(upload, "PNG")
        assert (
            await client.post(
                "/api/v1/search/image", files={"file": ("q.png", upload.getvalue(), "image/png")}
            )
        ).status_code == 200
        some_id = job["files"][0]["file_id"]
        assert (await client.get(f"/api/v1/files/{some_id}")).status_code == 200
        assert (await client.get("/no/such/page")).status_code == 404
        after = await _scrape(client)

    def grew(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert _value(after, "msearch_files", status="indexed", media_type="image") == 3
    assert _value(after, "msearch_files", status="failed", media_type="image") == 1
    assert _value(after, "msearch_files", status="skipped", media_type="unknown") == 1
    assert _value(after, "msearch_queue_depth") == 0
    assert grew("msearch_index_failures_total", code="corrupt_media") == 1
    assert grew("msearch_embed_seconds_count", kind="image") >= 2  # files, then the query
    assert grew("msearch_embed_seconds_count", kind="text") >= 1
    assert grew("msearch_search_seconds_count", kind="text") == 1
    assert grew("msearch_search_seconds_count", kind="image") == 1
    assert grew("msearch_http_requests_total", route="/api/v1/search/text", status="200") == 1
    # routes are labelled by their template, never by the path asked for
    assert grew("msearch_http_requests_total", route="/api/v1/files/{file_id}", status="200") == 1
    assert grew("msearch_http_requests_total", route="unmatched", status="404") == 1
    assert not [
        k
        for k in after
        if k[0] == "msearch_http_requests_total" and ("route", f"/api/v1/files/{some_id}") in k[1]
    ]


async def test_metrics_are_behind_the_api_key(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine
) -> None:
    async with api_client(make_settings(api={"api_key": "k" * 24}), tiny_engine) as client:
        assert (await client.get("/metrics")).status_code == 401
        keyed = await client.get("/metrics", headers={"Authorization": "Bearer " + "k" * 24})
        assert keyed.status_code == 200 and "msearch_queue_depth" in keyed.text
