"""Checking that the index equals the disk, for the folder-watching tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from msearch.media.scan import iter_media_files
from msearch.services import Services
from support.app import wait_for


async def index_state(services: Services) -> tuple[dict[str, Any], dict[str, int]]:
    """{path: record} of every file in SQLite, and {file_id: points} in Qdrant."""
    records, _ = await services.adapter.list_files(limit=100_000)
    return {r.path: r for r in records}, await services.adapter.points_per_file()


def media_on_disk(services: Services, *roots: Path, every: bool = False) -> set[str]:
    """The media files below ``roots`` (with ``every``: all files not ignored)."""
    monitoring = services.settings.file_monitoring
    extensions = None if every else monitoring.file_extensions
    return {str(p) for root in roots for p in iter_media_files(root, extensions, monitoring.ignore)}


async def assert_index_equals_disk(
    services: Services, *roots: Path, limit_s: float = 90
) -> dict[str, Any]:
    """Wait until watching is idle and every media file below ``roots`` is indexed exactly
    once (one SQLite row, its vectors in Qdrant), every other file not ignored is recorded
    as skipped, and nothing else is there; returns the media files' rows."""

    async def equal() -> bool:
        if not services.monitor.idle or services.orchestrator.queued:
            return False
        files, points = await index_state(services)
        media = media_on_disk(services, *roots)
        return (
            set(files) == media_on_disk(services, *roots, every=True)
            and all(r.status == ("indexed" if p in media else "skipped") for p, r in files.items())
            and set(points) == {r.id for p, r in files.items() if p in media}
        )

    try:
        await wait_for(equal, limit_s=limit_s, interval=0.1)
    except AssertionError:
        files, points = await index_state(services)
        disk = media_on_disk(services, *roots)
        unindexed = [(p, r.status, r.error) for p, r in files.items() if r.status != "indexed"]
        raise AssertionError(
            f"index != disk: missing {sorted(disk - set(files))[:5]}, "
            f"extra {sorted(set(files) - disk)[:5]}, "
            f"not indexed {unindexed[:5]}, "
            f"vector files {len(points)} vs rows {len(files)}; idle={services.monitor.idle}, "
            f"queued={services.orchestrator.queued}"
        ) from None
    files, points = await index_state(services)
    media = {p: r for p, r in files.items() if r.status == "indexed"}
    for record in media.values():
        expected = max(1, len(record.scenes))
        assert points[record.id] == expected, f"{record.path}: {points[record.id]} points"
    return media
