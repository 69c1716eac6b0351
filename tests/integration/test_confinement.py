"""No link leads msearch out of its roots: not when a folder is walked, watched or served,
and not when a link is swapped in after a file was indexed."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from support.app import api_client, wait_for
from support.media_factory import noise

from msearch.config import Settings
from msearch.embedding.infinity import InfinityEngine
from msearch.errors import FileVanished, PathNotAllowed, UnsupportedMedia
from msearch.media.originals import canonical_path, open_original
from msearch.media.scan import iter_media_files

SECRET = b"TOP-SECRET-BYTES"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the allowed root holding an image and a private file."""
    folder = tmp_path / "outside"
    folder.mkdir()
    noise(32, 32, seed=7).save(folder / "private.png")
    (folder / "secret.txt").write_bytes(SECRET)
    return folder


@pytest.fixture
async def client(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(file_monitoring={"debounce_ms": 200, "rescan_interval_s": 0})
    async with api_client(settings, tiny_engine) as c:
        yield c


async def _finished(client: httpx.AsyncClient, job: dict[str, object]) -> None:
    async def done() -> bool:
        state = (await client.get(str(job["status_url"]))).json()
        return bool(state["status"] == "finished")

    await wait_for(done)


async def _all_files(client: httpx.AsyncClient) -> list[dict[str, object]]:
    return list((await client.get("/api/v1/files?limit=1000")).json()["files"])


async def _nothing_leaks(client: httpx.AsyncClient, outside: Path) -> None:
    private = (outside / "private.png").read_bytes()
    for record in await _all_files(client):
        assert not str(record["path"]).startswith(str(outside))
        body = (await client.get(f"/api/v1/files/{record['file_id']}/content")).content
        assert SECRET not in body and body != private


def test_open_original_refuses_links_and_special_files(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    real = root / "sub" / "a.png"
    noise(8, 8).save(real)
    with open_original(real, [root]) as original:
        assert original.reopen_path.read_bytes() == real.read_bytes()
        assert original.size == real.stat().st_size
    (root / "link.png").symlink_to(outside / "private.png")
    (root / "inner.png").symlink_to(real)  # even a link that stays inside
    (root / "dirlink").symlink_to(outside)
    for path in (root / "link.png", root / "inner.png", root / "dirlink" / "private.png"):
        with pytest.raises(PathNotAllowed):
            open_original(path, None)
    with pytest.raises(PathNotAllowed):
        open_original(outside / "private.png", [root])
    os.mkfifo(root / "pipe.png")  # never blocks, never read
    with pytest.raises(UnsupportedMedia):
        open_original(root / "pipe.png", [root])
    with pytest.raises(FileVanished):
        open_original(root / "gone.png", [root])
    # the last component is kept, so a link is opened (and refused) as the link it is
    assert canonical_path(root / "link.png") == root / "link.png"
    assert canonical_path(root / "dirlink" / "private.png") == outside / "private.png"


def test_walks_do_not_follow_links(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    noise(8, 8).save(root / "a.png")
    (root / "x.jpg").symlink_to(outside / "secret.txt")
    (root / "private.png").symlink_to(outside / "private.png")
    (root / "away").symlink_to(outside)
    (root / "loop").symlink_to(root)
    found = list(iter_media_files(root, [".png", ".jpg"], []))
    assert found == [root / "a.png"]


async def test_batch_of_a_folder_with_escaping_links(
    client: httpx.AsyncClient, media_dir: Path, outside: Path
) -> None:
    """The reported attack: a link to a secret inside a root, then batch-process the root."""
    noise(24, 24).save(media_dir / "real.png")
    (media_dir / "x.jpg").symlink_to(outside / "secret.txt")
    (media_dir / "y.png").symlink_to(outside / "private.png")
    (media_dir / "away").symlink_to(outside)
    response = await client.post("/api/v1/files/batch-process", json={"paths": [str(media_dir)]})
    assert response.status_code == 202, response.text
    job = response.json()
    assert [f["path"] for f in job["files"]] == [str(media_dir / "real.png")]
    await _finished(client, job)
    await _nothing_leaks(client, outside)


async def test_a_named_link_is_refused_even_inside_the_root(
    client: httpx.AsyncClient, media_dir: Path, outside: Path
) -> None:
    (media_dir / "x.jpg").symlink_to(outside / "secret.txt")
    response = await client.post("/api/v1/files/process", json={"path": str(media_dir / "x.jpg")})
    assert response.status_code == 403, response.text
    await _nothing_leaks(client, outside)


async def test_watched_folder_ignores_links(
    client: httpx.AsyncClient, media_dir: Path, outside: Path
) -> None:
    watched = media_dir / "watched"
    watched.mkdir()
    response = await client.post("/api/v1/folders", json={"path": str(watched)})
    assert response.status_code in (200, 201), response.text
    (watched / "x.jpg").symlink_to(outside / "secret.txt")
    (watched / "y.png").symlink_to(outside / "private.png")
    (watched / "away").symlink_to(outside)
    noise(24, 24).save(watched / "after.png")  # settles after the links were seen

    async def after_indexed() -> bool:
        return any(
            f["path"] == str(watched / "after.png") and f["status"] == "indexed"
            for f in await _all_files(client)
        )

    await wait_for(after_indexed)
    rescan = await client.post(f"/api/v1/folders/{response.json()['id']}/rescan")
    assert rescan.status_code in (200, 202), rescan.text
    paths = {str(f["path"]) for f in await _all_files(client)}
    assert paths == {str(watched / "after.png")}
    await _nothing_leaks(client, outside)


async def test_links_swapped_in_after_indexing_lead_nowhere(
    client: httpx.AsyncClient, media_dir: Path, outside: Path
) -> None:
    sub = media_dir / "sub"
    sub.mkdir()
    noise(24, 24, seed=1).save(sub / "private.png")
    noise(24, 24, seed=2).save(media_dir / "top.png")
    response = await client.post("/api/v1/files/batch-process", json={"paths": [str(media_dir)]})
    job = response.json()
    await _finished(client, job)
    ids = {f["path"]: f["file_id"] for f in job["files"]}
    # a folder of the path becomes a link to the outside (same file name there)
    sub.rename(media_dir / "sub-moved")
    sub.symlink_to(outside)
    # and a file becomes a link to the secret
    (media_dir / "top.png").unlink()
    (media_dir / "top.png").symlink_to(outside / "secret.txt")
    for path in (str(sub / "private.png"), str(media_dir / "top.png")):
        file_id = ids[path]
        content = await client.get(f"/api/v1/files/{file_id}/content")
        assert content.status_code == 404, content.text
        assert SECRET not in content.content
        assert content.content != (outside / "private.png").read_bytes()
    # a thumbnail regenerated from the original would read through the link
    services = client.app.state.services  # type: ignore[attr-defined]
    services.adapter.thumbnail_path(ids[str(sub / "private.png")]).unlink()
    thumb = await client.get(f"/api/v1/files/{ids[str(sub / 'private.png')]}/thumbnail")
    assert thumb.status_code == 404, thumb.text
    # re-indexing through the link is refused too
    again = await client.post(
        "/api/v1/files/process", json={"path": str(media_dir / "sub-moved" / "private.png")}
    )
    assert again.status_code == 202
    reprocess = await services.orchestrator.process_file(sub / "private.png")
    assert reprocess.status == "failed" and reprocess.error_code == "path_not_allowed"
