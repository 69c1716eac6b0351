"""The pipeline on real components: Infinity (tiny model), Qdrant Edge, SQLite, Pillow."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from support.app import CountingEngine
from support.media_factory import noise, write_all_formats, write_broken

from msearch.config import Settings
from msearch.embedding.infinity import InfinityEngine
from msearch.media.scan import expand_paths
from msearch.services import Services, build_services
from msearch.store.records import FileStatus


@pytest.fixture
async def counting(tiny_engine: InfinityEngine) -> CountingEngine:
    return CountingEngine(tiny_engine)


@pytest.fixture
async def services(
    make_settings: Callable[..., Settings], counting: CountingEngine
) -> AsyncIterator[Services]:
    built = await build_services(make_settings(), engine=counting)  # type: ignore[arg-type]
    yield built
    await built.aclose()


async def test_every_format_indexes_and_broken_files_fail_clearly(
    services: Services, media_dir: Path
) -> None:
    good = write_all_formats(media_dir)
    broken = write_broken(media_dir)
    missing = media_dir / "gone.jpg"
    outcomes = await services.orchestrator.batch_process_files(
        [*good.values(), *broken.values(), missing]
    )
    by_path = {Path(r.path).name: r for r in outcomes}
    for path in good.values():
        record = by_path[path.name]
        assert record.status == FileStatus.INDEXED, (path.name, record.error)
        assert record.media_type == "image" and record.width == 96 and record.height == 64
        assert services.adapter.thumbnail_path(record.id).is_file()
    expected = {
        "truncated.jpg": "corrupt_media",
        "empty.jpg": "empty_file",
        "bomb.png": "too_many_pixels",
        "gone.jpg": "file_not_found",
    }
    for name, code in expected.items():
        record = by_path[name]
        assert record.status == FileStatus.FAILED and record.error_code == code, name
        assert record.error and len(record.error) > 10
    # not media at all (text named .png): skipped, not failed, with the reason
    assert (by_path["notes.png"].status, by_path["notes.png"].error_code) == (
        FileStatus.SKIPPED,
        "unsupported_media",
    )
    counts = await services.adapter.counts()
    assert counts["vectors"] == len(good)
    assert counts["files"] == {"indexed": len(good), "failed": len(expected), "skipped": 1}


async def test_files_of_other_types_are_skipped_with_the_reason(
    services: Services, media_dir: Path
) -> None:
    (media_dir / "notes.txt").write_text("shopping list")
    (media_dir / "Makefile").write_text("all:")
    (media_dir / "photo.jpg.xmp").write_text("<x/>")
    noise(40, 40).save(media_dir / "real.png")
    paths = expand_paths([media_dir], services.settings.file_monitoring.ignore)
    outcomes = {
        Path(r.path).name: r for r in await services.orchestrator.batch_process_files(paths)
    }
    assert outcomes["real.png"].status == FileStatus.INDEXED
    for name, reason in (
        ("notes.txt", ".txt files are"),
        ("photo.jpg.xmp", ".xmp files are"),
        ("Makefile", "a file without an extension is"),
    ):
        record = outcomes[name]
        assert (record.status, record.error_code) == (FileStatus.SKIPPED, "unsupported_type")
        assert record.error and record.error.startswith(reason), record.error


async def test_unchanged_files_are_skipped_and_changed_ones_replaced(
    services: Services, media_dir: Path, counting: CountingEngine
) -> None:
    path = media_dir / "a.jpg"
    noise(64, 64, seed=1).save(path, "JPEG")
    first = await services.orchestrator.process_file(path)
    assert first.status == FileStatus.INDEXED and counting.images_embedded == 1
    again = await services.orchestrator.process_file(path)
    assert again.id == first.id and again.status == FileStatus.INDEXED
    assert counting.images_embedded == 1  # not re-embedded
    os.utime(path)  # touched, same content: fingerprint says unchanged
    await services.orchestrator.process_file(path)
    assert counting.images_embedded == 1
    before = await services.adapter.file_vector(first.id)
    noise(64, 64, seed=2).save(path, "JPEG")
    changed = await services.orchestrator.process_file(path)
    assert changed.id == first.id and counting.images_embedded == 2
    after = await services.adapter.file_vector(first.id)
    assert before != after
    assert (await services.adapter.counts())["vectors"] == 1


async def test_failure_of_an_indexed_file_removes_its_stale_vectors(
    services: Services, media_dir: Path
) -> None:
    path = media_dir / "a.jpg"
    noise(64, 64).save(path, "JPEG")
    record = await services.orchestrator.process_file(path)
    path.write_bytes(b"\xff\xd8\xff\xe0 a JPEG cut short")
    failed = await services.orchestrator.process_file(path)
    assert failed.status == FileStatus.FAILED and failed.id == record.id
    assert (await services.adapter.counts())["vectors"] == 0
    path.write_text("overwritten by something that is no image at all")
    skipped = await services.orchestrator.process_file(path)
    assert skipped.status == FileStatus.SKIPPED and skipped.id == record.id


async def test_concurrency_is_bounded_and_engine_batches(
    services: Services, media_dir: Path, counting: CountingEngine
) -> None:
    paths = []
    for i in range(24):
        path = media_dir / f"img{i:02}.png"
        noise(48, 48, seed=i).save(path)
        paths.append(path)
    outcomes = await services.orchestrator.batch_process_files(paths)
    assert all(r.status == FileStatus.INDEXED for r in outcomes)
    limit = services.settings.performance.max_concurrent_files
    assert 1 < counting.max_in_flight <= limit


async def test_submit_returns_at_once_and_status_follows(
    services: Services, media_dir: Path
) -> None:
    path = media_dir / "x.png"
    noise(40, 40).save(path)
    queued = await services.orchestrator.submit(path)
    assert queued.status in (FileStatus.QUEUED, FileStatus.PROCESSING)
    await services.orchestrator.wait_idle()
    status = await services.orchestrator.get_processing_status(queued.id)
    assert status is not None and status.status == FileStatus.INDEXED
    assert status.progress == 1.0


async def test_the_same_file_queued_twice_is_processed_once(
    services: Services, media_dir: Path, counting: CountingEngine
) -> None:
    path = media_dir / "dup.png"
    noise(40, 40).save(path)
    results = await asyncio.gather(
        services.orchestrator.process_file(path), services.orchestrator.process_file(path)
    )
    assert results[0].id == results[1].id
    assert counting.images_embedded == 1


async def test_delete_removes_vectors_row_and_thumbnail(
    services: Services, media_dir: Path
) -> None:
    path = media_dir / "d.png"
    noise(40, 40).save(path)
    record = await services.orchestrator.process_file(path)
    thumb = services.adapter.thumbnail_path(record.id)
    assert thumb.is_file()
    assert await services.adapter.delete_file(record.id)
    assert await services.adapter.get_file(record.id) is None
    assert (await services.adapter.counts())["vectors"] == 0
    assert not thumb.exists() and path.exists()  # the original is never touched
