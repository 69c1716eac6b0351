"""SIGKILL mid-batch, restart: SQLite and Qdrant agree, nothing lost, nothing duplicated."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.cli_helpers import cli_env, run_cli
from support.media_factory import noise

from msearch.config import load_settings
from msearch.services import open_adapter
from msearch.store.vectors import point_id

pytestmark = pytest.mark.slow
N_FILES = 240


def _indexed_count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute("SELECT COUNT(*) FROM files WHERE status='indexed'").fetchone()
            return int(row[0])
    except sqlite3.OperationalError:
        return 0


def _kill_when(env: dict[str, str], folder: Path, db: Path, at_least: int) -> int:
    proc = subprocess.Popen(
        [sys.executable, "-m", "msearch", "index", str(folder), "--no-progress"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while _indexed_count(db) < at_least and proc.poll() is None:
        assert time.monotonic() < deadline, "indexing never started"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return _indexed_count(db)


async def test_sigkill_mid_batch_then_restart(tmp_path: Path, tiny_clip_dir: Path) -> None:
    folder = tmp_path / "lib"
    folder.mkdir()
    for i in range(N_FILES):
        noise(400, 300, seed=i).save(folder / f"{i:03}.jpg", "JPEG")
    data = tmp_path / "data"
    env = cli_env(data, tiny_clip_dir, MSEARCH_PERFORMANCE__MAX_CONCURRENT_FILES="16")
    db = data / "msearch.db"

    indexed = 0
    for _ in range(5):  # killed at five different moments of the batch
        indexed = _kill_when(env, folder, db, at_least=indexed + 20)
    assert indexed < N_FILES, "the batch finished before it could be killed"

    finished = run_cli(env, "index", str(folder), "--no-progress")
    assert finished.returncode == 0, finished.stdout + finished.stderr

    settings = load_settings(None, data_dir=data, embedding={"model": str(tiny_clip_dir)})
    adapter, lock = await open_adapter(settings)
    try:
        records, total = await adapter.list_files(limit=1000)
        assert total == N_FILES
        assert {r.status for r in records} == {"indexed"}
        assert len({r.path for r in records}) == N_FILES  # one row per file
        grouped = await adapter._vectors.file_point_ids(adapter.collection)
        assert set(grouped) == {r.id for r in records}  # no orphans, none missing
        assert all(ids == {point_id(f, 0)} for f, ids in grouped.items())  # no duplicates
        assert (await adapter.counts())["vectors"] == N_FILES
    finally:
        await adapter.close()
        lock.release()
