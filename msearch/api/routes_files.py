"""/api/v1/files: processing, status, listing, metadata, thumbnails and content."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, JSONResponse

from msearch.api.deps import ReadAccess, ServicesDep, WriteAccess
from msearch.api.schemas import BatchProcessRequest, MediaTypeName, ProcessRequest
from msearch.api.security import confine_path
from msearch.api.views import API, file_detail, file_status, file_summary
from msearch.errors import InvalidRequest, NotFound
from msearch.media.images import decode_image, write_thumbnail
from msearch.media.scan import expand_paths
from msearch.store.records import FileRecord, FileStatus

router = APIRouter(prefix=f"{API}/files", tags=["files"])


async def _record(services: ServicesDep, file_id: str) -> FileRecord:
    record = await services.adapter.get_file(file_id)
    if record is None:
        raise NotFound(f"no file with id {file_id}")
    return record


@router.post("/process", status_code=202, dependencies=[WriteAccess])
async def process_file(body: ProcessRequest, services: ServicesDep) -> JSONResponse:
    services.require_ready()
    path = confine_path(body.path, services.settings)
    if path.is_dir():
        raise InvalidRequest("path is a folder: use /files/batch-process or /folders")
    record = await services.orchestrator.submit(path)
    return JSONResponse(
        {"file_id": record.id, "status": str(record.status),
         "status_url": f"{API}/files/process-status/{record.id}"},
        status_code=202,
    )


@router.post("/batch-process", status_code=202, dependencies=[WriteAccess])
async def batch_process(body: BatchProcessRequest, services: ServicesDep) -> JSONResponse:
    services.require_ready()
    settings = services.settings
    confined = [confine_path(p, settings) for p in body.paths]
    paths = await asyncio.to_thread(expand_paths, confined,
                                    settings.file_monitoring.file_extensions,
                                    settings.file_monitoring.ignore)
    if not paths:
        raise InvalidRequest("no media files found in the given paths")
    job, records = await services.orchestrator.submit_batch(paths)
    return JSONResponse(
        {"job_id": job.id, "status_url": f"{API}/jobs/{job.id}",
         "files": [file_summary(r) for r in records]},
        status_code=202,
    )


@router.get("/process-status/{file_id}", dependencies=[ReadAccess])
async def process_status(file_id: str, services: ServicesDep) -> dict[str, Any]:
    return file_status(await _record(services, file_id))


@router.get("", dependencies=[ReadAccess])
async def list_files(
    services: ServicesDep,
    status: FileStatus | None = None,
    media_type: MediaTypeName | None = None,
    folder: str | None = Query(default=None, max_length=4096),
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0),
) -> dict[str, Any]:
    folder_path = str(Path(folder).expanduser().resolve()) if folder else None
    records, total = await services.adapter.list_files(
        status=str(status) if status else None, media_type=media_type, folder=folder_path,
        limit=limit, offset=offset)
    return {"files": [file_detail(r) for r in records], "total": total,
            "limit": limit, "offset": offset}


@router.get("/{file_id}", dependencies=[ReadAccess])
async def get_file(file_id: str, services: ServicesDep) -> dict[str, Any]:
    return file_detail(await _record(services, file_id))


def _checked_original(record: FileRecord) -> Path:
    """The original file, if it is still the regular file we indexed at that path (a
    symlink swapped in since must not lead the server elsewhere)."""
    path = Path(record.path)
    if path.is_symlink() or not path.is_file() or path.resolve() != path:
        raise NotFound("the original file is no longer available")
    return path


@router.get("/{file_id}/thumbnail", dependencies=[ReadAccess], response_class=FileResponse)
async def thumbnail(file_id: str, services: ServicesDep,
                    scene: int | None = Query(default=None, ge=0)) -> FileResponse:
    """The file's thumbnail; for a video, ``?scene=N`` gives that scene's keyframe."""
    record = await _record(services, file_id)
    if scene is not None and not any(s.index == scene for s in record.scenes):
        raise NotFound(f"file {file_id} has no scene {scene}")
    thumb = services.adapter.thumbnail_path(record.id, scene)
    if not thumb.is_file():
        if record.media_type != "image":
            raise NotFound("no thumbnail for this file")
        original = _checked_original(record)
        perf = services.settings.performance

        def regenerate() -> None:
            decoded = decode_image(original, max_pixels=perf.max_image_pixels,
                                   min_short=perf.thumbnail_size,
                                   min_long=perf.thumbnail_size)
            write_thumbnail(decoded.image, thumb, perf.thumbnail_size)

        await asyncio.to_thread(regenerate)
    return FileResponse(thumb, media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=3600"})


@router.get("/{file_id}/content", dependencies=[ReadAccess], response_class=FileResponse)
async def content(file_id: str, services: ServicesDep) -> FileResponse:
    record = await _record(services, file_id)
    original = _checked_original(record)
    return FileResponse(original, media_type=record.mime or "application/octet-stream",
                        filename=original.name, content_disposition_type="inline")
