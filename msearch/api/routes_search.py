"""/api/v1/search: by text, by uploaded image, or by an indexed file."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from msearch.api.deps import ReadAccess, ServicesDep
from msearch.api.schemas import (
    ImageSearchByFileRequest,
    SearchFilters,
    SoundSearchByFileRequest,
    TextSearchRequest,
)
from msearch.api.security import folder_filter
from msearch.api.views import API, search_hit
from msearch.errors import InvalidRequest, PayloadTooLarge
from msearch.search import SearchOptions
from msearch.store.adapter import StoredHit

router = APIRouter(prefix=f"{API}/search", tags=["search"])
_CHUNK = 1 << 16


def _options(filters: SearchFilters) -> SearchOptions:
    return SearchOptions(
        limit=filters.limit,
        offset=filters.offset,
        media_types=tuple(filters.media_types or ()),
        modalities=tuple(filters.modalities or ()),
        folder=folder_filter(filters.folder),
        min_score=filters.min_score,
        taken_after=filters.taken_after,
        taken_before=filters.taken_before,
        group_by_file=filters.group_by_file,
    )


def _response(hits: list[StoredHit], started: float, *, weaker: int = 0) -> JSONResponse:
    # Rendered here, not by FastAPI's encoder: under load its walk over every result
    # cost more than the search itself.
    return JSONResponse(
        {
            "results": [search_hit(h) for h in hits],
            "weaker": weaker,
            "took_ms": round((time.perf_counter() - started) * 1000, 2),
        }
    )


@router.post("/text", dependencies=[ReadAccess])
async def search_text(body: TextSearchRequest, services: ServicesDep) -> JSONResponse:
    started = time.perf_counter()
    services.require_ready()
    found = await services.searcher.by_text(body.query, _options(body))
    return _response(found.hits, started, weaker=found.weaker)


async def _read_upload(upload: UploadFile, limit_bytes: int) -> bytes:
    data = bytearray()
    while chunk := await upload.read(_CHUNK):
        data.extend(chunk)
        if len(data) > limit_bytes:
            raise PayloadTooLarge(f"the upload is larger than {limit_bytes // (1 << 20)} MB")
    if not data:
        raise InvalidRequest("the uploaded file is empty")
    return bytes(data)


def _upload_or_file_id(example: str, by_file: type[BaseModel]) -> dict[str, Any]:
    """The request body of a search by example: the example uploaded (multipart, the
    filters as form fields) or an indexed file named in JSON."""
    return {
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary", "description": example},
                            "limit": {"type": "integer"},
                            "offset": {"type": "integer"},
                            "media_types": {"type": "string", "description": "comma-separated"},
                            "modalities": {"type": "string", "description": "comma-separated"},
                            "folder": {"type": "string"},
                            "min_score": {"type": "number"},
                            "taken_after": {"type": "string", "format": "date-time"},
                            "taken_before": {"type": "string", "format": "date-time"},
                            "group_by_file": {"type": "boolean"},
                        },
                    }
                },
                "application/json": {"schema": by_file.model_json_schema()},
            }
        }
    }


@router.post(
    "/image",
    dependencies=[ReadAccess],
    openapi_extra=_upload_or_file_id("an example image", ImageSearchByFileRequest),
)
async def search_image(request: Request, services: ServicesDep) -> JSONResponse:
    """Multipart ``file`` (an example image) or JSON ``{"file_id"}`` (more like this; with
    ``"page": N``, more like that page of a document)."""
    started = time.perf_counter()
    services.require_ready()
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        try:
            body = ImageSearchByFileRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            raise InvalidRequest(_validation_message(exc)) from exc
        hits = await services.searcher.by_file(body.file_id, _options(body), page=body.page)
        return _response(hits, started)
    filters, data = await _multipart_query(request, services)
    return _response(await services.searcher.by_image(data, _options(filters)), started)


@router.post(
    "/audio",
    dependencies=[ReadAccess],
    openapi_extra=_upload_or_file_id("a sound clip", SoundSearchByFileRequest),
)
async def search_audio(request: Request, services: ServicesDep) -> JSONResponse:
    """Multipart ``file`` (a sound clip) or JSON ``{"file_id", "start"}`` (sounds like
    that moment of an indexed file)."""
    started = time.perf_counter()
    services.require_ready()
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        try:
            body = SoundSearchByFileRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            raise InvalidRequest(_validation_message(exc)) from exc
        hits = await services.searcher.by_sound_of_file(body.file_id, body.start, _options(body))
        return _response(hits, started)
    filters, data = await _multipart_query(request, services)
    return _response(await services.searcher.by_audio(data, _options(filters)), started)


async def _multipart_query(request: Request, services: ServicesDep) -> tuple[SearchFilters, bytes]:
    """An uploaded example (``file``) and the filters beside it, as form fields."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise InvalidRequest(
            "send multipart/form-data with a 'file' field, or JSON with a 'file_id'"
        )
    limit_bytes = int(services.settings.api.max_upload_mb * (1 << 20))
    async with request.form(max_files=1, max_fields=16) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("the multipart body has no 'file' field")
        fields: dict[str, Any] = {
            k: v for k, v in form.items() if k != "file" and isinstance(v, str) and v != ""
        }
        for listed in ("media_types", "modalities"):
            if listed in fields:
                fields[listed] = [m.strip() for m in fields[listed].split(",") if m.strip()]
        try:
            filters = SearchFilters.model_validate(fields)
        except ValidationError as exc:
            raise InvalidRequest(_validation_message(exc)) from exc
        return filters, await _read_upload(upload, limit_bytes)


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
    )
