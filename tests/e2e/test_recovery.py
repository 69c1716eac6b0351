"""Nothing bricks: a crash during a reset, a half-made vector collection or a failed
start-up leave a service that starts (or exits non-zero for its supervisor), stores that
agree and no file lost."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from support.app import api_client, wait_for
from support.cli_helpers import cli_env, run_cli, start_server, stop_server
from support.media_factory import noise

from msearch.config import Settings
from msearch.embedding.infinity import InfinityEngine
from msearch.services import build_services, open_adapter

N_FILES = 24


def _library(folder: Path, count: int = N_FILES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        noise(48, 48, seed=i).save(folder / f"{i:03}.png")
    return folder


async def _stores_agree(settings: Settings) -> dict[str, int]:
    """Every indexed row has exactly its vectors and no vector lacks a row."""
    adapter, lock = await open_adapter(settings)
    try:
        records, _ = await adapter.list_files(limit=10_000)
        points = await adapter.points_per_file()
        indexed = {r.id for r in records if r.status == "indexed"}
        assert set(points) <= {r.id for r in records}, "vectors without a file"
        assert indexed <= set(points), "indexed files without vectors"
        return {"files": len(records), "indexed": len(indexed), "vectors": sum(points.values())}
    finally:
        await adapter.close()
        lock.release()


@pytest.mark.slow
def test_sigkill_during_reset_never_bricks(
    tmp_path: Path, tiny_clip_dir: Path, make_settings: Callable[..., Settings]
) -> None:
    library = _library(tmp_path / "media" / "lib")
    data = tmp_path / "data"
    env = cli_env(data, tiny_clip_dir, MSEARCH_API__ALLOWED_ROOTS=json.dumps([str(library.parent)]))
    assert run_cli(env, "index", str(library), "--no-progress").returncode == 0
    settings = make_settings(data_dir=data, api={"allowed_roots": [library.parent]})
    rng = random.Random(5)
    kinds = ["index", "database", "all", "index", "database"]
    for trial, kind in enumerate(kinds):
        proc, url = start_server(env)
        try:
            # the reset runs in the server; it is killed at a random moment of it
            resetting = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "import httpx,sys; httpx.post(sys.argv[1], json="
                    "{'reset_type': sys.argv[2]}, timeout=60)",
                    f"{url}/api/v1/system/reset",
                    kind,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(rng.uniform(0.0, 0.25))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            resetting.wait(timeout=60)
        finally:
            stop_server(proc)
        # start-up always succeeds and finishes the interrupted reset
        proc, url = start_server(env)
        try:
            health = httpx.get(f"{url}/health", timeout=10).json()
            assert health["status"] in ("ok", "degraded"), health
            if kind == "index" or trial % 2:
                # index everything again (also after 'all', which forgot nothing on disk)
                done = run_cli(env, "index", str(library), "--server", url, "--no-progress")
                assert done.returncode == 0, done.stdout + done.stderr
        finally:
            stop_server(proc)
        counts = asyncio.run(_stores_agree(settings))
        assert counts["vectors"] == counts["indexed"], (trial, kind, counts)
    final = run_cli(env, "index", str(library), "--no-progress")
    assert final.returncode == 0, final.stdout + final.stderr
    counts = asyncio.run(_stores_agree(settings))
    assert counts == {"files": N_FILES, "indexed": N_FILES, "vectors": N_FILES}


async def test_an_interrupted_reset_is_finished_at_start_up(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine, media_dir: Path
) -> None:
    _library(media_dir, 6)
    settings = make_settings()
    services = await build_services(settings, engine=tiny_engine)
    try:
        done = await services.orchestrator.batch_process_files(sorted(media_dir.iterdir()))
        assert {r.status for r in done} == {"indexed"}
    finally:
        await services.aclose()
    # as if the process died right after the journal was written
    (settings.data_dir / "reset.pending").write_text("database")
    services = await build_services(settings, engine=tiny_engine)
    try:
        assert (await services.adapter.list_files())[1] == 0
        assert (await services.adapter.counts())["vectors"] == 0
        assert not (settings.data_dir / "reset.pending").exists()
    finally:
        await services.aclose()


async def test_search_during_a_reset_never_fails(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine, media_dir: Path
) -> None:
    _library(media_dir, 12)
    async with api_client(make_settings(), tiny_engine) as client:
        job = (
            await client.post("/api/v1/files/batch-process", json={"paths": [str(media_dir)]})
        ).json()

        async def finished() -> bool:
            return bool((await client.get(job["status_url"])).json()["status"] == "finished")

        await wait_for(finished)
        reset = client.post("/api/v1/system/reset", json={"reset_type": "index"})
        searches = [client.post("/api/v1/search/text", json={"query": "noise"}) for _ in range(20)]
        responses = await asyncio.gather(reset, *searches)
        assert responses[0].status_code == 200, responses[0].text
        for response in responses[1:]:
            assert response.status_code == 200, response.text


@pytest.mark.parametrize("damage", ["empty_segments", "garbage"])
async def test_a_half_made_collection_is_repaired(
    damage: str,
    make_settings: Callable[..., Settings],
    tiny_engine: InfinityEngine,
    media_dir: Path,
) -> None:
    _library(media_dir, 5)
    settings = make_settings()
    services = await build_services(settings, engine=tiny_engine)
    try:
        await services.orchestrator.batch_process_files(sorted(media_dir.iterdir()))
        collection = services.adapter.collection
    finally:
        await services.aclose()
    shard = settings.data_dir / "vectors" / collection
    shutil.rmtree(shard)
    shard.mkdir()
    if damage == "empty_segments":  # what a crash during creation used to leave
        (shard / "segments").mkdir()
    else:
        (shard / "edge_config.json").write_text("{not json")
    services = await build_services(settings, engine=tiny_engine)
    try:
        await services.orchestrator.wait_idle()
        records, total = await services.adapter.list_files()
        assert total == 5 and {r.status for r in records} == {"indexed"}
        assert (await services.adapter.counts())["vectors"] == 5
    finally:
        await services.aclose()


def test_a_failed_start_up_exits_non_zero(tmp_path: Path, tiny_clip_dir: Path) -> None:
    """The engine has started when the stores fail: the process must still exit."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "vectors").write_text("a file where the vectors folder should be")
    env = cli_env(data, tiny_clip_dir)
    result = run_cli(env, "serve", "--port", "0", timeout=120)
    assert result.returncode != 0
    assert "vector" in (result.stdout + result.stderr).lower()


async def test_jobs_left_running_by_a_crash_finish(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine, media_dir: Path
) -> None:
    paths = sorted(_library(media_dir, 6).iterdir())
    settings = make_settings()
    services = await build_services(settings, engine=tiny_engine)
    try:
        # as a crash leaves it: a job of six, two counted, the rest never processed
        await services.orchestrator.stop()
        job, _ = await services.orchestrator.submit_batch(paths)
        for _ in range(2):
            await services.adapter.record_job_progress(job.id, failed=False)
    finally:
        await services.aclose()
    services = await build_services(settings, engine=tiny_engine)
    try:
        await services.orchestrator.wait_idle()
        finished = await services.adapter.get_job(job.id)
        assert finished is not None
        assert (finished.status, finished.done, finished.failed) == ("finished", 6, 0)
        files, _ = await services.adapter.list_files()
        assert {f.status for f in files} == {"indexed"}
    finally:
        await services.aclose()


async def test_indexing_pauses_on_a_full_disk_and_search_goes_on(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine, media_dir: Path
) -> None:
    free = [10 << 20]
    paths = sorted(_library(media_dir, 4).iterdir())
    async with api_client(make_settings(), tiny_engine) as client:
        guard = client.app.state.services.orchestrator.disk  # type: ignore[attr-defined]
        guard._free_bytes = lambda path: free[0]
        guard._interval = 0.05
        job = (
            await client.post(
                "/api/v1/files/batch-process", json={"paths": [str(p) for p in paths]}
            )
        ).json()
        health = await wait_for(lambda: _paused_health(client))
        assert "low disk space" in health["indexing"]["paused"]
        search = await client.post("/api/v1/search/text", json={"query": "noise"})
        assert search.status_code == 200
        statuses = {f["status"] for f in (await client.get("/api/v1/files")).json()["files"]}
        assert statuses == {"queued"}  # waiting, not failed
        free[0] = 10 << 30

        async def finished() -> bool:
            return bool((await client.get(job["status_url"])).json()["status"] == "finished")

        await wait_for(finished)
        health = (await client.get("/health")).json()
        assert health["indexing"]["paused"] is None and health["counts"]["vectors"] == 4


async def _paused_health(client: httpx.AsyncClient) -> dict[str, object] | None:
    health = (await client.get("/health")).json()
    return health if health.get("indexing", {}).get("paused") else None


def _watch_env(tmp_path: Path, tiny_clip_dir: Path, root: Path) -> dict[str, str]:
    return cli_env(
        tmp_path / "data",
        tiny_clip_dir,
        MSEARCH_API__ALLOWED_ROOTS=json.dumps([str(root)]),
        MSEARCH_FILE_MONITORING__DEBOUNCE_MS="200",
        MSEARCH_FILE_MONITORING__RESCAN_INTERVAL_S="0",
    )


def _wait_settled(url: str, expected: int, limit_s: float = 120) -> dict[str, str]:
    """Until the server is idle with ``expected`` indexed files; {path: file_id}."""
    deadline = time.monotonic() + limit_s
    while True:
        files = httpx.get(f"{url}/api/v1/files", params={"limit": 1000}, timeout=10).json()
        folders = httpx.get(f"{url}/api/v1/folders", timeout=10).json()["folders"]
        busy = any(f.get("scanning") or f.get("pending_changes") for f in folders)
        indexed = {f["path"]: f["file_id"] for f in files["files"] if f["status"] == "indexed"}
        if not busy and len(indexed) == expected == files["total"]:
            return indexed
        assert time.monotonic() < deadline, (len(indexed), files["total"], folders)
        time.sleep(0.3)


def _sigkill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stop_server(proc)


@pytest.mark.slow
def test_sigkill_during_a_rename_storm_keeps_file_ids(
    tmp_path: Path, tiny_clip_dir: Path, make_settings: Callable[..., Settings]
) -> None:
    root = tmp_path / "media"
    lib = _library(root / "lib", N_FILES)
    env = _watch_env(tmp_path, tiny_clip_dir, root)
    proc, url = start_server(env)
    httpx.post(f"{url}/api/v1/folders", json={"path": str(lib)}, timeout=30)
    ids = {Path(p).name: i for p, i in _wait_settled(url, N_FILES).items()}
    rng = random.Random(11)
    for trial in range(5):
        names = sorted(p.name for p in lib.rglob("*.png"))
        for name in rng.sample(names, 8):  # rename, then kill at a random moment
            current = next(lib.rglob(name))
            target = lib / f"t{trial}" / name
            target.parent.mkdir(exist_ok=True)
            current.rename(target)
        time.sleep(rng.uniform(0.0, 0.6))
        _sigkill(proc)
        proc, url = start_server(env)  # start-up always succeeds
        after = {Path(p).name: i for p, i in _wait_settled(url, N_FILES).items()}
        assert after == ids, f"trial {trial}: file ids changed"
    stop_server(proc)
    counts = asyncio.run(_stores_agree(make_settings(data_dir=tmp_path / "data")))
    assert counts == {"files": N_FILES, "indexed": N_FILES, "vectors": N_FILES}


@pytest.mark.slow
def test_sigkill_during_folder_removal_leaves_agreeing_stores(
    tmp_path: Path, tiny_clip_dir: Path, make_settings: Callable[..., Settings]
) -> None:
    root = tmp_path / "media"
    env = _watch_env(tmp_path, tiny_clip_dir, root)
    settings = make_settings(data_dir=tmp_path / "data")
    rng = random.Random(3)
    for trial in range(5):
        lib = _library(root / f"lib{trial}", 16)
        proc, url = start_server(env)
        folder = httpx.post(f"{url}/api/v1/folders", json={"path": str(lib)}, timeout=30)
        _wait_settled(url, 16)
        removing = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import httpx,sys; httpx.delete(sys.argv[1], timeout=60)",
                f"{url}/api/v1/folders/{folder.json()['id']}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.0, 0.3))
        _sigkill(proc)
        removing.wait(timeout=60)
        proc, url = start_server(env)  # start-up always succeeds
        try:
            folders = httpx.get(f"{url}/api/v1/folders", timeout=10).json()["folders"]
            if folders:  # the removal did not commit: finish it now
                response = httpx.delete(f"{url}/api/v1/folders/{folders[0]['id']}", timeout=60)
                assert response.status_code == 200, response.text
            _wait_settled(url, 0)
        finally:
            stop_server(proc)
        counts = asyncio.run(_stores_agree(settings))
        assert counts == {"files": 0, "indexed": 0, "vectors": 0}, (trial, counts)
