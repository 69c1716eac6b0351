"""Folder watching on the real filesystem with real watchdog events, the real pipeline
(Infinity on the tiny model, Qdrant Edge, SQLite). After every change the index must equal
the disk; moved files must keep their ids without being embedded again."""

from __future__ import annotations

import errno
import logging
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.app import CountingEngine, api_client, wait_for
from support.media_factory import noise
from support.video_factory import segments_video
from support.watch_helpers import assert_index_equals_disk

from msearch.config import Settings
from msearch.embedding.infinity import InfinityEngine
from msearch.services import Services, build_services
from msearch.watch import observers
from msearch.watch.observers import mount_fstype
from msearch.watch.stability import FileStabilityTracker

WATCH = {"debounce_ms": 300, "poll_interval_s": 0.2, "rescan_interval_s": 0}


def png(path: Path, seed: int, size: int = 48) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise(size, size, seed=seed).save(path, "PNG")
    return path


@pytest.fixture
async def counting(tiny_engine: InfinityEngine) -> CountingEngine:
    return CountingEngine(tiny_engine)


@pytest.fixture
def watch_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(file_monitoring=WATCH)


Starter = Callable[[], Awaitable[Services]]


@pytest.fixture
async def started(watch_settings: Settings, counting: CountingEngine) -> AsyncIterator[Starter]:
    """Starts the service with watching on; everything started is closed at the end."""
    running: list[Services] = []

    async def start() -> Services:
        services = await build_services(
            watch_settings,
            engine=counting,  # type: ignore[arg-type]
            watch=True,
        )
        running.append(services)
        return services

    yield start
    for services in running:
        await services.aclose()


async def watch(services: Services, folder: Path, recursive: bool = True) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    record, _ = await services.monitor.add(folder.resolve(), recursive)
    return record.id


async def test_create_modify_rename_delete(
    started: Starter, counting: CountingEngine, media_dir: Path
) -> None:
    services = await started()
    lib = media_dir / "lib"
    await watch(services, lib)
    first = png(lib / "a.png", seed=1)
    files = await assert_index_equals_disk(services, lib)
    file_id = files[str(first)].id
    assert counting.images_embedded == 1

    png(first, seed=2)  # new content, same name
    await wait_for(lambda: counting.images_embedded == 2)
    files = await assert_index_equals_disk(services, lib)
    assert files[str(first)].id == file_id

    renamed = first.rename(lib / "renamed.png")
    files = await wait_for(lambda: _path_is_indexed(services, renamed))
    files = await assert_index_equals_disk(services, lib)
    assert files[str(renamed)].id == file_id
    assert counting.images_embedded == 2, "a renamed file must not be embedded again"

    renamed.unlink()
    files = await assert_index_equals_disk(services, lib)
    assert files == {}


async def _path_is_indexed(services: Services, path: Path) -> bool:
    found = await services.adapter.get_files_by_path([str(path)])
    return bool(found) and found[str(path)].status == "indexed"


async def test_moves_across_folders_directory_moves_and_subtree_delete(
    started: Starter, counting: CountingEngine, media_dir: Path
) -> None:
    services = await started()
    left, right = media_dir / "left", media_dir / "right"
    await watch(services, left)
    await watch(services, right)
    png(left / "one.png", seed=10)
    for i in range(3):
        png(left / "trip" / "day" / f"p{i}.png", seed=20 + i)
    files = await assert_index_equals_disk(services, left, right)
    ids = {Path(p).name: r.id for p, r in files.items()}
    embedded = counting.images_embedded
    assert embedded == 4

    shutil.move(left / "one.png", right / "one.png")  # across watched folders
    (left / "trip").rename(left / "holiday")  # directory rename inside a folder
    await wait_for(lambda: _path_is_indexed(services, left / "holiday" / "day" / "p2.png"))
    await wait_for(lambda: _path_is_indexed(services, right / "one.png"))
    files = await assert_index_equals_disk(services, left, right)
    assert {Path(p).name: r.id for p, r in files.items()} == ids
    assert str(left / "holiday" / "day" / "p0.png") in files

    shutil.move(left / "holiday", right / "holiday")  # directory move across folders
    await wait_for(lambda: _path_is_indexed(services, right / "holiday" / "day" / "p1.png"))
    files = await assert_index_equals_disk(services, left, right)
    assert {Path(p).name: r.id for p, r in files.items()} == ids
    assert counting.images_embedded == embedded, "moved files must keep their vectors"
    hits = await services.adapter.search(
        await services.adapter.file_vector(ids["p1.png"]) or [],
        limit=1,
        filter=_folder_filter(right / "holiday"),
    )
    assert hits and hits[0].file.id == ids["p1.png"], "the payload must follow the move"

    shutil.rmtree(right / "holiday")  # subtree delete
    files = await assert_index_equals_disk(services, left, right)
    assert set(files) == {str(right / "one.png")}


def _folder_filter(folder: Path) -> object:
    from msearch.store.records import VectorFilter

    return VectorFilter(folder=str(folder))


async def test_file_written_slowly_is_processed_once_complete(
    started: Starter, counting: CountingEngine, media_dir: Path
) -> None:
    services = await started()
    lib = media_dir / "lib"
    await watch(services, lib)
    source = png(media_dir / "source.png", seed=3, size=160)
    data = source.read_bytes()
    target = lib / "slow.png"
    chunks = 12
    step = len(data) // chunks + 1
    with target.open("wb") as fh:
        for start in range(0, len(data), step):
            fh.write(data[start : start + step])
            fh.flush()
            os.fsync(fh.fileno())
            await _sleep(0.1)  # well inside the 300 ms the file must stay unchanged
    files = await assert_index_equals_disk(services, lib)
    assert files[str(target)].size == len(data)
    assert services.monitor.totals.queued == 1, "a growing file must be queued once, whole"
    assert counting.images_embedded == 1


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def test_a_burst_of_500_files_loses_nothing(
    started: Starter, counting: CountingEngine, media_dir: Path
) -> None:
    services = await started()
    lib = media_dir / "burst"
    await watch(services, lib)
    for i in range(500):
        png(lib / f"d{i % 5}" / f"f{i:03d}.png", seed=1000 + i, size=32)
    files = await assert_index_equals_disk(services, lib, limit_s=240)
    assert len(files) == 500
    assert counting.images_embedded == 500, "each file embedded exactly once"
    assert len({r.fingerprint for r in files.values()}) == 500


async def test_a_moved_video_keeps_its_scenes(
    started: Starter, counting: CountingEngine, media_dir: Path
) -> None:
    services = await started()
    lib = media_dir / "lib"
    await watch(services, lib)
    staging = media_dir / "staging.mp4"
    segments_video(staging, [1.5, 1.5, 1.5])
    clip = staging.rename(lib / "clip.mp4")  # appears whole, as a finished copy does
    files = await assert_index_equals_disk(services, lib)
    before = files[str(clip)]
    assert len(before.scenes) == 3
    embedded = counting.images_embedded

    moved = clip.rename(lib / "holiday.mp4")
    await wait_for(lambda: _path_is_indexed(services, moved))
    files = await assert_index_equals_disk(services, lib)
    after = files[str(moved)]
    assert after.id == before.id and after.scenes == before.scenes
    assert counting.images_embedded == embedded
    vector = await services.adapter.file_vector(after.id)
    hits = await services.adapter.search(vector or [], limit=3)
    assert {h.file.path for h in hits} == {str(moved)}
    assert sorted(h.scene.index for h in hits if h.scene) == [0, 1, 2]


async def test_ignored_names_wait_until_renamed(started: Starter, media_dir: Path) -> None:
    services = await started()
    lib = media_dir / "lib"
    await watch(services, lib)
    png(lib / ".hidden.png", seed=1)
    png(lib / ".cache" / "inside.png", seed=2)
    png(lib / "~$lock.png", seed=3)
    download = lib / "photo.jpg.crdownload"
    noise(40, 40, seed=4).save(download, "JPEG")
    for name in ("x.tmp", "y.part", "notes.txt"):
        (lib / name).write_bytes(b"not media")
    files = await assert_index_equals_disk(services, lib)
    assert files == {}
    done = download.rename(lib / "photo.jpg")  # the download finished
    await wait_for(lambda: _path_is_indexed(services, done))
    files = await assert_index_equals_disk(services, lib)
    assert set(files) == {str(done)}


async def test_changes_made_while_stopped_are_found_at_start(
    started: Starter, counting: CountingEngine, media_dir: Path
) -> None:
    services = await started()
    lib = media_dir / "lib"
    await watch(services, lib)
    for name, seed in (("keep", 1), ("change", 2), ("delete", 3), ("move", 4)):
        png(lib / f"{name}.png", seed=seed)
    before = await assert_index_equals_disk(services, lib)
    await services.aclose()
    embedded = counting.images_embedded

    png(lib / "change.png", seed=22, size=64)
    (lib / "delete.png").unlink()
    (lib / "sub").mkdir()
    (lib / "move.png").rename(lib / "sub" / "moved.png")
    png(lib / "new.png", seed=5)

    services = await started()
    after = await assert_index_equals_disk(services, lib)
    assert after[str(lib / "sub" / "moved.png")].id == before[str(lib / "move.png")].id
    assert after[str(lib / "keep.png")].indexed_at == before[str(lib / "keep.png")].indexed_at
    assert counting.images_embedded - embedded == 2, "only the new and the changed file"


async def test_a_folder_that_is_away_keeps_its_files(started: Starter, media_dir: Path) -> None:
    services = await started()
    lib = media_dir / "drive"
    folder_id = await watch(services, lib)
    png(lib / "a.png", seed=1)
    await assert_index_equals_disk(services, lib)
    await services.aclose()

    lib.rename(media_dir / "elsewhere")  # as if the drive were unmounted
    services = await started()
    await wait_for(lambda: services.monitor.idle)
    [view] = await services.monitor.views()
    assert view["present"] is False and view["watching"] is None
    assert view["counts"]["indexed"] == 1, "an absent folder must not empty the index"

    (media_dir / "elsewhere").rename(lib)
    await services.monitor.rescan(folder_id)
    [view] = await services.monitor.views()
    assert view["present"] is True and view["watching"] == "inotify"
    png(lib / "b.png", seed=2)
    await assert_index_equals_disk(services, lib)


async def test_polling_takes_over_when_inotify_watches_run_out(
    started: Starter,
    media_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    class ExhaustedInotify(observers.InotifyObserver):
        def schedule(self, *args: object, **kwargs: object) -> object:
            raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(observers, "_inotify_observer", ExhaustedInotify)
    services = await started()
    lib = media_dir / "lib"
    with caplog.at_level(logging.WARNING, logger="msearch.watch.observers"):
        await watch(services, lib)
    assert "polling it every 0.2s instead" in caplog.text
    [view] = await services.monitor.views()
    assert view["watching"] == "polling"
    png(lib / "polled.png", seed=1)
    (lib / "sub").mkdir()
    png(lib / "sub" / "deeper.png", seed=2)
    files = await assert_index_equals_disk(services, lib)
    assert len(files) == 2


def test_stability_rules_with_a_fake_clock() -> None:
    now = [0.0]
    sizes: dict[str, tuple[int, int] | None] = {"f": (10, 1)}
    tracker = FileStabilityTracker(1.0, clock=lambda: now[0], look=lambda p: sizes.get(p))
    tracker.touch("f")
    now[0] = 0.9
    assert tracker.due() == []  # too soon after the event
    sizes["f"] = (20, 2)  # still growing, no event seen (e.g. a polled folder)
    now[0] = 1.1
    assert tracker.due() == []
    now[0] = 2.0
    assert tracker.due() == []  # changed at 1.1: must stay unchanged until 2.1
    now[0] = 2.2
    assert tracker.due() == ["f"]
    assert len(tracker) == 0

    tracker.touch("gone")  # a deletion waits as long as a change
    now[0] = 3.0
    assert tracker.due() == []
    now[0] = 3.3
    assert tracker.due() == ["gone"]


def test_eventless_filesystems_are_recognised() -> None:
    mountinfo = (
        "22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/root rw\n"
        "40 22 0:50 / /mnt/nas rw,relatime shared:2 - nfs4 nas:/photos rw,vers=4.2\n"
        "41 22 0:51 / /mnt/my\\040drive rw shared:3 - fuse.sshfs host:/x rw\n"
    )
    assert mount_fstype(Path("/home/me/pics"), mountinfo) == "ext4"
    assert mount_fstype(Path("/mnt/nas/2024/a.jpg"), mountinfo) == "nfs4"
    assert mount_fstype(Path("/mnt/my drive/a"), mountinfo) == "fuse.sshfs"
    assert mount_fstype(Path("/mnt/nasty"), mountinfo) == "ext4"


async def _folder(client: httpx.AsyncClient, folder_id: int) -> dict[str, Any]:
    listed = (await client.get("/api/v1/folders")).json()["folders"]
    return next(f for f in listed if f["id"] == folder_id)


async def test_folders_api(
    make_settings: Callable[..., Settings],
    tiny_engine: InfinityEngine,
    media_dir: Path,
    tmp_path: Path,
) -> None:
    lib = media_dir / "lib"
    for i in range(6):
        png(lib / "sub" / f"{i}.png", seed=i)
    (lib / "bad.png").write_bytes((lib / "sub" / "0.png").read_bytes()[:120])  # truncated
    async with api_client(make_settings(file_monitoring=WATCH), tiny_engine) as client:
        outside = await client.post("/api/v1/folders", json={"path": str(tmp_path)})
        assert outside.status_code == 403
        not_dir = await client.post("/api/v1/folders", json={"path": str(lib / "bad.png")})
        assert not_dir.status_code == 400
        created = await client.post("/api/v1/folders", json={"path": str(lib)})
        assert created.status_code == 201, created.text
        view = created.json()
        assert view["path"] == str(lib) and view["recursive"] is True
        assert view["watching"] == "inotify"
        assert view["scanning"] or view["pending_changes"] or view["counts"]["queued"], (
            "a folder just added must show work in progress, never look finished"
        )

        async def indexed() -> dict[str, Any] | None:
            current = await _folder(client, view["id"])
            done = not current["scanning"] and current["counts"]["queued"] == 0
            return current if done and current["counts"]["indexed"] == 6 else None

        view = await wait_for(indexed)
        assert view["counts"] == {"indexed": 6, "queued": 0, "failed": 1, "skipped": 0, "total": 7}
        scan = view["last_scan"]  # files written moments ago settle first, then are queued
        assert scan["queued"] + scan["deferred"] == 7
        failed = (await client.get("/api/v1/files", params={"status": "failed"})).json()
        assert failed["files"][0]["error"]["code"] == "corrupt_media"

        again = await client.post("/api/v1/folders", json={"path": str(lib)})
        assert again.status_code == 200 and again.json()["id"] == view["id"]
        nested = await client.post("/api/v1/folders", json={"path": str(lib / "sub")})
        assert nested.status_code == 409 and str(lib) in nested.json()["error"]["message"]

        (lib / "sub" / "0.png").unlink()
        rescan = await client.post(f"/api/v1/folders/{view['id']}/rescan")
        assert rescan.status_code == 202 and rescan.json()["scan"]["deleted"] in (0, 1)
        assert (await client.post("/api/v1/folders/999/rescan")).status_code == 404
        assert (await client.delete("/api/v1/folders/999")).status_code == 404

        kept = await client.delete(f"/api/v1/folders/{view['id']}", params={"keep_files": "true"})
        assert kept.status_code == 200 and kept.json()["files_removed"] == 0
        assert (await client.get("/api/v1/folders")).json() == {"folders": []}
        assert (await client.get("/api/v1/files")).json()["total"] == 6

        again = await client.post("/api/v1/folders", json={"path": str(lib)})
        removed = await client.delete(f"/api/v1/folders/{again.json()['id']}")
        assert removed.json()["files_removed"] == 6
        assert (await client.get("/api/v1/files")).json()["total"] == 0
        assert sorted(p.name for p in (lib / "sub").iterdir()) == [
            f"{i}.png" for i in (1, 2, 3, 4, 5)
        ]


async def test_configured_folders_and_resets(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine, media_dir: Path
) -> None:
    lib = media_dir / "configured"
    for i in range(3):
        png(lib / f"{i}.png", seed=i)
    settings = make_settings(file_monitoring={**WATCH, "folders": [lib]})
    async with api_client(settings, tiny_engine) as client:
        services = client.app.state.services  # type: ignore[attr-defined]
        await assert_index_equals_disk(services, lib)
        [view] = (await client.get("/api/v1/folders")).json()["folders"]
        assert view["path"] == str(lib)

        reset = await client.post("/api/v1/system/reset", json={"reset_type": "database"})
        assert reset.status_code == 200
        await assert_index_equals_disk(services, lib)  # still watched: indexed afresh

        reset = await client.post("/api/v1/system/reset", json={"reset_type": "all"})
        assert reset.json()["removed"]["folders"] == 1
        assert (await client.get("/api/v1/folders")).json() == {"folders": []}
        png(lib / "after-reset.png", seed=9)
        await _sleep(1.0)  # well past the settle time: nothing may pick it up
        assert services.monitor.idle
        assert (await client.get("/api/v1/files")).json()["total"] == 0


async def test_the_two_halves_of_a_move_pair_up_across_batches(
    started: Starter, counting: CountingEngine, media_dir: Path, tmp_path: Path
) -> None:
    """The source of a move reported (and settled) alone, its destination only later:
    the file keeps its id and vectors instead of being deleted and embedded again."""
    services = await started()
    lib = media_dir / "lib"
    await watch(services, lib)
    first = png(lib / "a.png", seed=1)
    files = await assert_index_equals_disk(services, lib)
    file_id = files[str(first)].id
    parked = tmp_path / "parked.png"  # outside every watched folder: no event for it
    first.rename(parked)
    sync = services.monitor._sync
    report = await sync.sync_paths([str(first)], services.monitor._folders)
    assert report.deleted == 0 and sync.vanishing == 1
    assert not services.monitor.idle  # a move may still be completing
    parked.rename(lib / "later.png")
    files = await assert_index_equals_disk(services, lib)
    assert files[str(lib / "later.png")].id == file_id
    assert counting.images_embedded == 1


async def test_a_vanished_file_leaves_after_its_grace(
    started: Starter, media_dir: Path, tmp_path: Path
) -> None:
    services = await started()
    lib = media_dir / "lib"
    await watch(services, lib)
    png(lib / "a.png", seed=1)
    await assert_index_equals_disk(services, lib)
    (lib / "a.png").unlink()
    files = await assert_index_equals_disk(services, lib)
    assert files == {}


@pytest.mark.slow
async def test_a_rename_storm_keeps_every_file_id(
    started: Starter, counting: CountingEngine, media_dir: Path
) -> None:
    services = await started()
    lib, other = media_dir / "lib", media_dir / "other"
    await watch(services, lib)
    await watch(services, other)
    for i in range(120):
        png(lib / f"d{i % 4}" / f"{i:03}.png", seed=i)
    files = await assert_index_equals_disk(services, lib, other)
    ids = {Path(p).name: r.id for p, r in files.items()}
    embedded = counting.images_embedded
    # renames, moves across watched folders and a directory rename, all at once
    for i in range(0, 120, 3):
        src = lib / f"d{i % 4}" / f"{i:03}.png"
        src.rename(src.with_name(f"r{i:03}.png"))
    for i in range(1, 120, 3):
        src = lib / f"d{i % 4}" / f"{i:03}.png"
        (other / f"d{i % 4}").mkdir(exist_ok=True)
        src.rename(other / f"d{i % 4}" / f"{i:03}.png")
    (lib / "d2").rename(lib / "d2-renamed")
    files = await assert_index_equals_disk(services, lib, other, limit_s=120)
    after = {Path(p).name.removeprefix("r"): r.id for p, r in files.items()}
    assert after == ids
    assert counting.images_embedded == embedded, "a moved file was embedded again"
