"""/api/v1/folders: watched folders, kept indexed and equal to the disk."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from msearch.api.deps import ReadAccess, ServicesDep, WriteAccess
from msearch.api.schemas import FolderRequest
from msearch.api.security import confine_path
from msearch.api.views import API

router = APIRouter(prefix=f"{API}/folders", tags=["folders"])


@router.get("", dependencies=[ReadAccess])
async def list_folders(services: ServicesDep) -> dict[str, Any]:
    return {"folders": await services.monitor.views()}


@router.post("", dependencies=[WriteAccess], status_code=201)
async def add_folder(
    body: FolderRequest, services: ServicesDep, response: Response
) -> dict[str, Any]:
    """Watch a folder inside the allowed roots; its files are indexed in the background
    (follow ``counts`` in ``GET /api/v1/folders``)."""
    services.require_ready()
    path = confine_path(body.path, services.settings)
    folder, created = await services.monitor.add(path, body.recursive)
    if not created:
        response.status_code = 200
    return await _view(services, folder.id)


@router.delete("/{folder_id}", dependencies=[WriteAccess])
async def remove_folder(
    folder_id: int, services: ServicesDep, keep_files: bool = False
) -> dict[str, Any]:
    """Stop watching; its files leave the index unless ``keep_files=true``."""
    return await services.monitor.remove(folder_id, keep_files=keep_files)


@router.post("/{folder_id}/rescan", dependencies=[WriteAccess], status_code=202)
async def rescan_folder(folder_id: int, services: ServicesDep) -> dict[str, Any]:
    """Compare the folder with the disk now; changed files are queued."""
    services.require_ready()
    report = await services.monitor.rescan(folder_id)
    return {**await _view(services, folder_id), "scan": report.as_dict()}


async def _view(services: ServicesDep, folder_id: int) -> dict[str, Any]:
    views = await services.monitor.views()
    return next(v for v in views if v["id"] == folder_id)
