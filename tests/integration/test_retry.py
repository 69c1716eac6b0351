"""Failed files do not stay failed: transient causes are retried with back-off, a rescan
retries what changed (and what failed for a transient cause), and a user retries on
purpose through the API, the CLI and the web page (tests/test_web.py)."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from support.app import api_client, wait_for
from support.cli_helpers import cli_env, run_cli
from support.media_factory import noise

from msearch.config import Settings
from msearch.embedding.infinity import InfinityEngine
from msearch.errors import EmbeddingTimeout
from msearch.media.originals import open_original
from msearch.services import build_services


class Flaky:
    """The real engine, except that the first ``failures`` image calls time out (what an
    engine restart does to the files in flight)."""

    def __init__(self, engine: InfinityEngine, failures: int) -> None:
        self._engine = engine
        self.failures = failures
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    async def embed_images(self, images: list[Image.Image]) -> list[list[float]]:
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise EmbeddingTimeout("the embedding engine did not answer; it was restarted")
        return await self._engine.embed_images(images)


@pytest.mark.parametrize(("attempts", "outcome"), [(3, "indexed"), (2, "failed")])
async def test_transient_failures_are_retried_with_back_off(
    attempts: int,
    outcome: str,
    make_settings: Callable[..., Settings],
    tiny_engine: InfinityEngine,
    media_dir: Path,
) -> None:
    noise(40, 40, seed=1).save(media_dir / "a.png")
    settings = make_settings(performance={"retry_attempts": attempts, "retry_backoff_s": 0.05})
    engine = Flaky(tiny_engine, failures=2)
    services = await build_services(settings, engine=engine)  # type: ignore[arg-type]
    try:
        [record] = await services.orchestrator.batch_process_files([media_dir / "a.png"])
    finally:
        await services.aclose()
    assert record.status == outcome and engine.calls == min(attempts, 3)
    if outcome == "failed":
        assert record.error_code == "embedding_timeout"
    else:
        assert record.error_code is None


def _same_size_twins(path: Path) -> tuple[bytes, bytes]:
    """A good PNG and a broken file of exactly the same size."""
    buffer = io.BytesIO()
    noise(48, 48, seed=7).save(buffer, "PNG")
    good = buffer.getvalue()
    return good, good[: len(good) // 2] + bytes(len(good) - len(good) // 2)


async def test_retry_on_purpose_after_fixing_a_file(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine, media_dir: Path
) -> None:
    """The file is fixed without its size or mtime changing (a restore from a backup): a
    rescan cannot see it, so it says 'still failed', and a retry indexes it."""
    good, broken = _same_size_twins(media_dir / "x.png")
    target = media_dir / "x.png"
    target.write_bytes(broken)
    for i in range(3):
        noise(40, 40, seed=i).save(media_dir / f"ok{i}.png")
    async with api_client(make_settings(), tiny_engine) as client:
        nothing = await client.post("/api/v1/files/retry")
        assert nothing.status_code == 202 and nothing.json()["job_id"] is None
        folder = (await client.post("/api/v1/folders", json={"path": str(media_dir)})).json()

        async def settled() -> bool:
            listing = (await client.get("/api/v1/files")).json()
            return listing["total"] == 4 and all(
                f["status"] in ("indexed", "failed") for f in listing["files"]
            )

        await wait_for(settled)
        [failed] = (await client.get("/api/v1/files", params={"status": "failed"})).json()["files"]
        assert failed["error"]["code"] == "corrupt_media"
        stat = target.stat()
        target.write_bytes(good)
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))

        async def quiet() -> bool:  # the watcher saw the write and looked at the file
            listed = (await client.get("/api/v1/folders")).json()["folders"]
            return not listed[0]["pending_changes"]

        await wait_for(quiet)
        rescan = (await client.post(f"/api/v1/folders/{folder['id']}/rescan")).json()
        assert rescan["scan"]["still_failed"] == 1 and rescan["scan"]["queued"] == 0, rescan["scan"]

        unknown = await client.post("/api/v1/files/retry", json={"file_ids": ["nope"]})
        assert unknown.status_code == 404
        assert (await client.post("/api/v1/files/retry", json={"file_ids": []})).status_code == 422
        job = await client.post("/api/v1/files/retry", json={"file_ids": [failed["file_id"]]})
        assert job.status_code == 202 and len(job.json()["files"]) == 1

        async def finished() -> bool:
            state = (await client.get(job.json()["status_url"])).json()
            return bool(state["status"] == "finished")

        await wait_for(finished)
        record = (await client.get(f"/api/v1/files/{failed['file_id']}")).json()
        assert record["status"] == "indexed" and record["error"] is None


def test_msearch_retry_all(tmp_path: Path, tiny_clip_dir: Path, media_dir: Path) -> None:
    good, broken = _same_size_twins(media_dir / "y.png")
    target = media_dir / "y.png"
    target.write_bytes(broken)
    noise(40, 40, seed=3).save(media_dir / "fine.png")
    env = cli_env(
        tmp_path / "data", tiny_clip_dir, MSEARCH_API__ALLOWED_ROOTS=json.dumps([str(media_dir)])
    )
    first = run_cli(env, "index", str(media_dir), "--no-progress")
    assert first.returncode == 3 and "1 failed" in first.stdout
    stat = target.stat()
    target.write_bytes(good)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    retried = run_cli(env, "retry", "--all", "--no-progress")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert "1 files" in retried.stdout and "1 indexed" in retried.stdout
    assert run_cli(env, "retry", "--all").stdout.strip() == "no failed files to retry"


def test_a_file_written_to_while_read_is_noticed(media_dir: Path) -> None:
    path = media_dir / "growing.bin"
    path.write_bytes(b"x" * 100)
    with open_original(path) as original:
        assert not original.changed_since_opened()
        with path.open("ab") as more:
            more.write(b"y" * 100)
        assert original.changed_since_opened()
