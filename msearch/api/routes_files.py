"""/api/v1/files: processing, status, listing, metadata, thumbnails and content."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send

from msearch.api.deps import ReadAccess, ServicesDep, WriteAccess
from msearch.api.schemas import BatchProcessRequest, MediaTypeName, ProcessRequest, RetryRequest
from msearch.api.security import confine_path, folder_filter
from msearch.api.views import API, file_detail, file_status, file_summary
from msearch.app.transcripts import transcript_view
from msearch.errors import InvalidRequest, MSearchError, NotFound
from msearch.media.documents import render_page
from msearch.media.images import decode_image, write_thumbnail
from msearch.media.originals import OriginalFile, open_original
from msearch.media.scan import expand_paths
from msearch.store.records import FileRecord, FileStatus

router = APIRouter(prefix=f"{API}/files", tags=["files"])
# SQLite's integers stop at 2**63; no listing is that long.
MAX_OFFSET = 10**12


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
        {
            "file_id": record.id,
            "status": str(record.status),
            "status_url": f"{API}/files/process-status/{record.id}",
        },
        status_code=202,
    )


@router.post("/batch-process", status_code=202, dependencies=[WriteAccess])
async def batch_process(body: BatchProcessRequest, services: ServicesDep) -> JSONResponse:
    services.require_ready()
    settings = services.settings
    confined = [confine_path(p, settings) for p in body.paths]
    paths = await asyncio.to_thread(expand_paths, confined, settings.file_monitoring.ignore)
    if not paths:
        raise InvalidRequest("no files found in the given paths")
    job, records = await services.orchestrator.submit_batch(paths)
    return JSONResponse(
        {
            "job_id": job.id,
            "status_url": f"{API}/jobs/{job.id}",
            "files": [file_summary(r) for r in records],
        },
        status_code=202,
    )


@router.post("/retry", status_code=202, dependencies=[WriteAccess])
async def retry_files(services: ServicesDep, body: RetryRequest | None = None) -> JSONResponse:
    """Process files again: the ones named, or every failed file."""
    services.require_ready()
    job, records = await services.orchestrator.retry(body.file_ids if body else None)
    return JSONResponse(
        {
            "job_id": job.id if job else None,
            "status_url": f"{API}/jobs/{job.id}" if job else None,
            "files": [file_summary(r) for r in records],
        },
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
    offset: int = Query(default=0, ge=0, le=MAX_OFFSET),
) -> dict[str, Any]:
    folder_path = folder_filter(folder)
    records, total = await services.adapter.list_files(
        status=str(status) if status else None,
        media_type=media_type,
        folder=folder_path,
        limit=limit,
        offset=offset,
    )
    listing: dict[str, Any] = {
        "files": [file_detail(r) for r in records],
        "total": total,
        "limit": limit,
        "offset": offset,
    }
    if status == FileStatus.SKIPPED:  # how many of each kind, for a one-line summary
        listing["reasons"] = await services.adapter.skipped_reasons()
    return listing


@router.get("/{file_id}", dependencies=[ReadAccess])
async def get_file(file_id: str, services: ServicesDep) -> dict[str, Any]:
    return file_detail(await _record(services, file_id))


@router.get(
    "/{file_id}/transcript",
    dependencies=[ReadAccess],
    responses={200: {"content": {"text/vtt": {}}, "description": "JSON, or WebVTT"}},
)
async def transcript(
    file_id: str,
    services: ServicesDep,
    format: Literal["json", "vtt"] = Query(default="json"),
) -> Response:
    """What is said in the file, segment by segment (seconds); ``?format=vtt`` as
    WebVTT subtitles for a player."""
    view = await transcript_view(services.adapter, file_id)
    if format == "vtt":
        return Response(view.to_vtt(), media_type="text/vtt; charset=utf-8")
    return JSONResponse(view.to_json())


def _open_original(services: ServicesDep, record: FileRecord) -> OriginalFile:
    """The original, if it is still a regular file at its recorded path, reached through
    no link and inside the roots: a symlink swapped in since indexing leads nowhere."""
    try:
        return open_original(Path(record.path), services.media_roots())
    except MSearchError as exc:
        raise NotFound(f"the original file is no longer available ({exc.message})") from exc


@router.get("/{file_id}/thumbnail", dependencies=[ReadAccess], response_class=FileResponse)
async def thumbnail(
    file_id: str,
    services: ServicesDep,
    scene: int | None = Query(default=None, ge=0),
    page: int | None = Query(default=None, ge=1, le=1_000_000),
) -> FileResponse:
    """The file's thumbnail; for a video, ``?scene=N`` gives that scene's keyframe, for a
    document ``?page=N`` that page (from 1)."""
    record = await _record(services, file_id)
    if page is not None:
        if record.media_type != "document":
            raise InvalidRequest("only documents have pages")
        scene = page - 1
        if not any(s.index == scene for s in record.scenes):
            raise NotFound(f"document {file_id} has no indexed page {page}")
    elif scene is not None and not any(s.index == scene for s in record.scenes):
        raise NotFound(f"file {file_id} has no scene {scene}")
    thumb = services.adapter.thumbnail_path(record.id, scene)
    if not thumb.is_file():
        if record.media_type not in ("image", "document"):
            raise NotFound("no thumbnail for this file")
        perf = services.settings.performance

        def regenerate() -> None:
            with _open_original(services, record) as original:
                if record.media_type == "document":
                    picture = render_page(
                        original.reopen_path, scene or 0, min_short=perf.thumbnail_size
                    )
                else:
                    picture = decode_image(
                        original.reopen_path,
                        max_pixels=perf.max_image_pixels,
                        min_short=perf.thumbnail_size,
                        min_long=perf.thumbnail_size,
                    ).image
            write_thumbnail(picture, thumb, perf.thumbnail_size)

        await asyncio.to_thread(regenerate)
    return FileResponse(
        thumb, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"}
    )


# A preview is sized for a screen, not for the model.
PREVIEW_SHORT, PREVIEW_LONG = 1080, 1920


@router.get(
    "/{file_id}/preview",
    dependencies=[ReadAccess],
    response_class=Response,
    responses={200: {"description": "JPEG", "content": {"image/jpeg": {}}}},
)
async def preview(
    file_id: str,
    services: ServicesDep,
    page: int = Query(default=1, ge=1, le=1_000_000),
) -> Response:
    """The image as a JPEG a browser can show (HEIC, TIFF), upright, screen-sized; for a
    document, its page ``?page=N`` (from 1) rendered so."""
    record = await _record(services, file_id)
    if record.media_type not in ("image", "document"):
        raise InvalidRequest("previews are made of images and pages; play a video from /content")
    document = record.document or {}
    if record.media_type == "document" and page > int(document.get("pages") or 0):
        raise NotFound(f"document {file_id} has no page {page}")
    max_pixels = services.settings.performance.max_image_pixels

    def render() -> bytes:
        with _open_original(services, record) as original:
            if record.media_type == "document":
                picture = render_page(original.reopen_path, page - 1, min_short=PREVIEW_SHORT)
            else:
                picture = decode_image(
                    original.reopen_path,
                    max_pixels=max_pixels,
                    min_short=PREVIEW_SHORT,
                    min_long=PREVIEW_LONG,
                ).image
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=88)
        return buffer.getvalue()

    return Response(
        await asyncio.to_thread(render),
        media_type="image/jpeg",
        headers={"Cache-Control": "private, max-age=3600"},
    )


@router.get("/{file_id}/content", dependencies=[ReadAccess], response_class=FileResponse)
async def content(file_id: str, services: ServicesDep) -> FileResponse:
    record = await _record(services, file_id)
    original = await asyncio.to_thread(_open_original, services, record)
    return _OriginalResponse(original, media_type=record.mime or "application/octet-stream")


class _OriginalResponse(FileResponse):
    """Served from the opened descriptor, so the name cannot be swapped under the
    response; the descriptor is closed however the response ends."""

    def __init__(self, original: OriginalFile, *, media_type: str) -> None:
        super().__init__(
            original.reopen_path,
            media_type=media_type,
            filename=original.path.name,
            content_disposition_type="inline",
        )
        self._original = original

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._original.close()
