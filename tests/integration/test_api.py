"""Every endpoint through HTTP, with the real services behind the app."""

from __future__ import annotations

import gc
import io
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from support.app import api_client, wait_for
from support.media_factory import jpeg_with_exif, noise, solid

from msearch.config import Settings
from msearch.embedding.infinity import InfinityEngine

KEY = "s3cret-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
async def client(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine
) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(make_settings(), tiny_engine) as c:
        yield c


async def _index(client: httpx.AsyncClient, *paths: Path) -> list[dict[str, Any]]:
    response = await client.post(
        "/api/v1/files/batch-process", json={"paths": [str(p) for p in paths]}
    )
    assert response.status_code == 202, response.text
    job = response.json()

    async def finished() -> bool:
        state = (await client.get(job["status_url"])).json()
        return bool(state["status"] == "finished")

    await wait_for(finished)
    return list(job["files"])


def _assert_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["message"]
    if code:
        assert body["code"] == code


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["model"]["dim"] == 64
    assert body["counts"]["vectors"] == 0
    assert response.headers["x-request-id"]
    echoed = await client.get("/health", headers={"X-Request-ID": "trace-123"})
    assert echoed.headers["x-request-id"] == "trace-123"


async def test_a_server_freezes_what_its_start_up_built(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine
) -> None:
    """`msearch serve` moves start-up's objects (modules, models) out of the collector's
    reach: a full collection walked half a million of them, ~200 ms with the event loop
    stopped every few seconds under load, and that pause was search's p99."""
    frozen_before = gc.get_freeze_count()
    try:
        async with api_client(
            make_settings(), tiny_engine, background_start=True, freeze_heap=True
        ) as client:
            await wait_for(lambda: gc.get_freeze_count() > frozen_before)
            services = client.app.state.services  # type: ignore[attr-defined]
            assert services.starting is None and services.model_error is None
            assert not any(tracked is services for tracked in gc.get_objects())
            search = await client.post("/api/v1/search/text", json={"query": "red"})
            assert search.status_code == 200, search.text
    finally:
        gc.unfreeze()


async def test_process_one_file_and_follow_its_status(
    client: httpx.AsyncClient, media_dir: Path
) -> None:
    path = jpeg_with_exif(
        media_dir / "p.jpg",
        noise(120, 80),
        orientation=6,
        taken="2020:01:02 03:04:05",
        make="Nikon",
        model="Z 6",
    )
    response = await client.post("/api/v1/files/process", json={"path": str(path)})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued" and body["status_url"].endswith(body["file_id"])

    async def indexed() -> dict[str, Any] | None:
        state = (await client.get(body["status_url"])).json()
        return state if state["status"] == "indexed" else None

    state = await wait_for(indexed)
    assert state["progress"] == 1.0 and state["error"] is None
    assert state["media_type"] == "image" and state["scenes"] is None
    meta = (await client.get(f"/api/v1/files/{body['file_id']}")).json()
    assert (meta["width"], meta["height"]) == (80, 120)  # as displayed after EXIF rotation
    assert meta["taken_at"].startswith("2020-01-02T03:04:05")
    assert meta["camera"] == "Nikon Z 6" and meta["mime"] == "image/jpeg"
    assert meta["size"] == path.stat().st_size and meta["enhanced"] is False


async def test_batch_listing_filters_and_paging(client: httpx.AsyncClient, media_dir: Path) -> None:
    (media_dir / "sub").mkdir()
    paths = [media_dir / f"{i}.png" for i in range(3)] + [media_dir / "sub" / "s.png"]
    for i, path in enumerate(paths):
        noise(30, 30, seed=i).save(path)
    (media_dir / "bad.jpg").write_text("nope")
    (media_dir / "notes.txt").write_text("not media")
    (media_dir / "notes2.txt").write_text("not media either")
    files = await _index(client, media_dir)  # a folder expands to the files below it
    assert len(files) == 7
    listing = (await client.get("/api/v1/files", params={"limit": 2})).json()
    assert listing["total"] == 7 and len(listing["files"]) == 2
    page3 = (await client.get("/api/v1/files", params={"limit": 2, "offset": 6})).json()
    assert len(page3["files"]) == 1
    assert (await client.get("/api/v1/files", params={"status": "failed"})).json()["total"] == 0
    skipped = (await client.get("/api/v1/files", params={"status": "skipped"})).json()
    assert [f["error"]["code"] for f in skipped["files"]] == [
        "unsupported_media",
        "unsupported_type",
        "unsupported_type",
    ]
    assert skipped["reasons"] == {".txt": 2, "unsupported_media": 1}
    sub = (await client.get("/api/v1/files", params={"folder": str(media_dir / "sub")})).json()
    assert [Path(f["path"]).name for f in sub["files"]] == ["s.png"]
    bad = await client.get("/api/v1/files", params={"status": "bogus"})
    _assert_error(bad, 422, "validation_error")


async def test_thumbnail_and_content_with_ranges(
    client: httpx.AsyncClient, media_dir: Path
) -> None:
    path = media_dir / "big.png"
    noise(800, 600).save(path)
    [file] = await _index(client, path)
    thumb = await client.get(f"/api/v1/files/{file['file_id']}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 320
    content = await client.get(f"/api/v1/files/{file['file_id']}/content")
    assert content.status_code == 200 and content.content == path.read_bytes()
    ranged = await client.get(
        f"/api/v1/files/{file['file_id']}/content", headers={"Range": "bytes=100-199"}
    )
    assert ranged.status_code == 206
    assert ranged.content == path.read_bytes()[100:200]
    assert ranged.headers["content-range"] == f"bytes 100-199/{path.stat().st_size}"
    _assert_error(await client.get("/api/v1/files/nope/thumbnail"), 404, "not_found")


async def test_content_refuses_a_symlink_swapped_in(
    client: httpx.AsyncClient, media_dir: Path, tmp_path: Path
) -> None:
    path = media_dir / "x.png"
    noise(20, 20).save(path)
    [file] = await _index(client, path)
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    path.unlink()
    path.symlink_to(secret)
    response = await client.get(f"/api/v1/files/{file['file_id']}/content")
    _assert_error(response, 404)
    assert b"private" not in response.content


async def test_text_search_with_filters(client: httpx.AsyncClient, media_dir: Path) -> None:
    (media_dir / "a").mkdir()
    (media_dir / "b").mkdir()
    for i in range(3):
        noise(40, 40, seed=i).save(media_dir / "a" / f"{i}.png")
        noise(40, 40, seed=10 + i).save(media_dir / "b" / f"{i}.png")
    await _index(client, media_dir)
    response = await client.post("/api/v1/search/text", json={"query": "a dog", "limit": 4})
    assert response.status_code == 200
    body = response.json()
    assert len(body["results"]) == 4 and body["took_ms"] >= 0
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    hit = body["results"][0]
    assert set(hit) == {"file_id", "path", "media_type", "score", "kind", "thumbnail_url", "scene"}
    assert hit["kind"] == "visual"
    paged = (
        await client.post("/api/v1/search/text", json={"query": "a dog", "limit": 2, "offset": 2})
    ).json()
    assert [r["file_id"] for r in paged["results"]] == [r["file_id"] for r in body["results"][2:4]]
    in_a = (
        await client.post(
            "/api/v1/search/text", json={"query": "a dog", "folder": str(media_dir / "a")}
        )
    ).json()
    assert {Path(r["path"]).parent.name for r in in_a["results"]} == {"a"}
    videos = (
        await client.post("/api/v1/search/text", json={"query": "a dog", "media_types": ["video"]})
    ).json()
    assert videos["results"] == []
    none = (
        await client.post("/api/v1/search/text", json={"query": "a dog", "min_score": 0.9999})
    ).json()
    assert all(r["score"] >= 0.9999 for r in none["results"])
    future = (
        await client.post(
            "/api/v1/search/text", json={"query": "a dog", "taken_after": "2100-01-01T00:00:00Z"}
        )
    ).json()
    assert future["results"] == []  # no image has a taken_at after 2100
    for bad in (
        {"query": ""},
        {"query": "x", "limit": 0},
        {"query": "x", "limit": 10_000},
        {"query": "x", "media_types": ["spreadsheet"]},
        {"query": "x", "modalities": ["smell"]},
        {"nope": 1},
    ):
        _assert_error(await client.post("/api/v1/search/text", json=bad), 422)


async def test_image_search_by_upload_and_by_file_id(
    client: httpx.AsyncClient, media_dir: Path
) -> None:
    red, blue = media_dir / "red.png", media_dir / "blue.png"
    solid(64, 64, (255, 0, 0)).save(red)
    solid(64, 64, (0, 0, 255)).save(blue)
    for i in range(3):
        noise(64, 64, seed=i).save(media_dir / f"n{i}.png")
    files = {Path(f["path"]).name: f["file_id"] for f in await _index(client, media_dir)}
    upload = io.BytesIO()
    solid(50, 70, (250, 5, 5)).save(upload, "JPEG")
    response = await client.post(
        "/api/v1/search/image",
        files={"file": ("q.jpg", upload.getvalue(), "image/jpeg")},
        data={"limit": "3"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["file_id"] == files["red.png"]
    by_id = await client.post("/api/v1/search/image", json={"file_id": files["red.png"]})
    ids = [r["file_id"] for r in by_id.json()["results"]]
    assert files["red.png"] not in ids and len(ids) == 4  # the query file is excluded
    _assert_error(
        await client.post("/api/v1/search/image", json={"file_id": "missing"}), 404, "not_found"
    )


async def test_garbage_uploads_are_rejected_cleanly(
    client: httpx.AsyncClient, media_dir: Path
) -> None:
    cases = [b"", b"GIF89a-not-really", b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, b"<html>hello</html>"]
    for data in cases:
        response = await client.post(
            "/api/v1/search/image", files={"file": ("x.png", data, "image/png")}
        )
        assert response.status_code in (400, 422), (data[:10], response.text)
        assert response.json()["error"]["code"] in (
            "invalid_request",
            "corrupt_media",
            "unsupported_media",
        )
    _assert_error(
        await client.post(
            "/api/v1/search/image", content=b"raw", headers={"content-type": "image/png"}
        ),
        400,
    )
    _assert_error(await client.post("/api/v1/search/image", data={"limit": "3"}), 400)
    # the service keeps working after all that
    assert (await client.get("/health")).json()["status"] == "ok"


async def test_upload_limit(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine
) -> None:
    async with api_client(make_settings(api={"max_upload_mb": 0.05}), tiny_engine) as client:
        big = io.BytesIO()
        noise(400, 400).save(big, "PNG")
        assert big.tell() > 0.05 * (1 << 20)
        response = await client.post(
            "/api/v1/search/image", files={"file": ("big.png", big.getvalue())}
        )
        _assert_error(response, 413, "payload_too_large")


async def test_path_confinement(client: httpx.AsyncClient, media_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.png"
    noise(20, 20).save(secret)
    (media_dir / "link.png").symlink_to(secret)
    (media_dir / "linkdir").symlink_to(outside)
    attempts = [
        f"{media_dir}/../outside/secret.png",
        str(secret),
        "/etc/passwd",
        str(media_dir / "link.png"),
        str(media_dir / "linkdir" / "secret.png"),
        "../outside/secret.png",
    ]
    for attempt in attempts:
        response = await client.post("/api/v1/files/process", json={"path": attempt})
        _assert_error(response, 403, "path_not_allowed")
        batch = await client.post("/api/v1/files/batch-process", json={"paths": [attempt]})
        _assert_error(batch, 403, "path_not_allowed")
    _assert_error(await client.post("/api/v1/files/process", json={"path": "a\x00b"}), 400)
    listing = (await client.get("/api/v1/files")).json()
    assert listing["total"] == 0  # nothing outside the roots was registered


async def test_without_roots_a_single_user_server_may_use_its_home(
    make_settings: Callable[..., Settings],
    tiny_engine: InfinityEngine,
    media_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a plain 'make run' (loopback, no key, no allowed_roots) the page can add a
    folder of the user's; anything else, and any server reachable by others, needs
    api.allowed_roots, and the refusal says so."""
    home = tmp_path / "home"
    (home / "Pictures").mkdir(parents=True)
    noise(10, 10).save(home / "Pictures" / "a.png")
    noise(10, 10).save(media_dir / "a.png")
    monkeypatch.setenv("HOME", str(home))
    async with api_client(make_settings(api={"allowed_roots": []}), tiny_engine) as client:
        added = await client.post("/api/v1/folders", json={"path": str(home / "Pictures")})
        assert added.status_code == 201, added.text
        outside = await client.post(
            "/api/v1/files/process", json={"path": str(media_dir / "a.png")}
        )
        _assert_error(outside, 403, "path_not_allowed")
        assert "MSEARCH_API__ALLOWED_ROOTS" in outside.json()["error"]["message"]
    keyed = make_settings(data_dir=tmp_path / "keyed", api={"allowed_roots": [], "api_key": KEY})
    async with api_client(keyed, tiny_engine) as client:
        response = await client.post(
            "/api/v1/files/process",
            json={"path": str(home / "Pictures" / "a.png")},
            headers={"Authorization": f"Bearer {KEY}"},
        )
        _assert_error(response, 403, "path_not_allowed")
        assert "allowed_roots" in response.json()["error"]["message"]


async def test_api_key(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine, media_dir: Path
) -> None:
    noise(10, 10).save(media_dir / "a.png")
    async with api_client(make_settings(api={"api_key": KEY}), tiny_engine) as client:
        assert (await client.get("/health")).status_code == 200
        for method, url, body in [
            ("POST", "/api/v1/files/process", {"path": str(media_dir / "a.png")}),
            ("POST", "/api/v1/search/text", {"query": "x"}),
            ("GET", "/api/v1/files", None),
            ("POST", "/api/v1/system/reset", {"reset_type": "index"}),
        ]:
            _assert_error(await client.request(method, url, json=body), 401, "unauthorized")
            wrong = {"Authorization": "Bearer nope"}
            _assert_error(await client.request(method, url, json=body, headers=wrong), 401)
        ok = await client.post(
            "/api/v1/files/process", headers=AUTH, json={"path": str(media_dir / "a.png")}
        )
        assert ok.status_code == 202
        assert (await client.get("/api/v1/files", headers=AUTH)).status_code == 200


async def test_beyond_loopback_without_key_refuses_changes(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine, media_dir: Path
) -> None:
    noise(10, 10).save(media_dir / "a.png")
    async with api_client(make_settings(api={"host": "0.0.0.0"}), tiny_engine) as client:
        response = await client.post(
            "/api/v1/files/process", json={"path": str(media_dir / "a.png")}
        )
        _assert_error(response, 403, "forbidden")
        _assert_error(await client.post("/api/v1/system/reset", json={"reset_type": "all"}), 403)
        search = await client.post("/api/v1/search/text", json={"query": "x"})
        assert search.status_code == 200, search.text


async def test_resets(client: httpx.AsyncClient, media_dir: Path) -> None:
    for i in range(3):
        noise(30, 30, seed=i).save(media_dir / f"{i}.png")
    await _index(client, media_dir)
    assert (await client.get("/health")).json()["counts"]["vectors"] == 3

    index = (await client.post("/api/v1/system/reset", json={"reset_type": "index"})).json()
    assert index["removed"]["vectors"] == 3 and index["removed"]["requeued_files"] == 3

    async def reindexed() -> bool:
        health = (await client.get("/health")).json()
        return bool(
            health["counts"]["vectors"] == 3 and health["counts"]["files"] == {"indexed": 3}
        )

    await wait_for(reindexed)  # index reset re-embeds every file
    database = (await client.post("/api/v1/system/reset", json={"reset_type": "database"})).json()
    assert database["removed"]["files"] == 3
    assert (await client.get("/api/v1/files")).json()["total"] == 0
    await _index(client, media_dir)
    everything = (await client.post("/api/v1/system/reset", json={"reset_type": "all"})).json()
    assert everything["removed"]["vectors"] == 3 and everything["removed"]["cache_files"] >= 3
    assert sorted(p.name for p in media_dir.iterdir()) == ["0.png", "1.png", "2.png"]
    _assert_error(await client.post("/api/v1/system/reset", json={"reset_type": "x"}), 422)


async def test_reset_during_a_batch_leaves_nothing_behind(
    client: httpx.AsyncClient, media_dir: Path
) -> None:
    for i in range(40):
        noise(64, 64, seed=i).save(media_dir / f"{i}.png")
    response = await client.post("/api/v1/files/batch-process", json={"paths": [str(media_dir)]})
    assert response.status_code == 202
    reset = await client.post("/api/v1/system/reset", json={"reset_type": "database"})
    assert reset.status_code == 200
    health = (await client.get("/health")).json()
    assert health["counts"]["queued"] == 0
    assert health["counts"]["vectors"] == 0 and health["counts"]["files"] == {}
    assert (await client.get("/api/v1/files")).json()["total"] == 0


async def test_unknown_routes_and_methods_use_the_envelope(client: httpx.AsyncClient) -> None:
    _assert_error(await client.get("/api/v1/nothing"), 404)
    _assert_error(await client.delete("/health"), 405)
    _assert_error(await client.get("/api/v1/files/nope"), 404, "not_found")
    _assert_error(await client.get("/api/v1/jobs/nope"), 404, "not_found")
    _assert_error(
        await client.post(
            "/api/v1/files/process",
            content=b"{not json",
            headers={"content-type": "application/json"},
        ),
        422,
    )


async def test_openapi_is_served(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path in (
        "/health",
        "/api/v1/files/process",
        "/api/v1/search/image",
        "/api/v1/system/reset",
        "/api/v1/files/{file_id}/content",
    ):
        assert path in spec["paths"]


async def test_degraded_when_model_cannot_load(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    empty = tmp_path / "empty-model"
    empty.mkdir()
    async with api_client(make_settings(embedding={"model": str(empty)}), None) as client:
        health = await client.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "degraded"
        assert "cannot load" in health.json()["model"]["error"]
        _assert_error(
            await client.post("/api/v1/search/text", json={"query": "x"}), 503, "model_unavailable"
        )
        assert (await client.get("/api/v1/files")).status_code == 200


async def test_a_heic_photo_has_a_jpeg_preview(client: httpx.AsyncClient, media_dir: Path) -> None:
    """Browsers other than Safari cannot show HEIC: the viewer falls back to /preview."""
    from support.media_factory import phone_photo

    phone_photo(media_dir / "IMG_0001.heic", "HEIF")
    [record] = await _index(client, media_dir / "IMG_0001.heic")
    detail = (await client.get(f"/api/v1/files/{record['file_id']}")).json()
    assert detail["status"] == "indexed" and detail["mime"] == "image/heic"
    preview = await client.get(f"/api/v1/files/{record['file_id']}/preview")
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(preview.content)) as shown:
        assert shown.format == "JPEG" and shown.size == (80, 120)  # upright
    _assert_error(await client.get("/api/v1/files/nope/preview"), 404, "not_found")
