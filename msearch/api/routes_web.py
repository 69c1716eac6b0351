"""The web page at ``/`` (static files shipped in the package) and its session cookie."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from msearch.api.deps import ServicesDep
from msearch.api.security import SESSION_COOKIE, has_valid_session, session_token
from msearch.api.views import API
from msearch.errors import Unauthorized

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"

router = APIRouter(tags=["web"])


class SessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    api_key: str = Field(min_length=1, max_length=1024)


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(WEB_ROOT / "index.html", headers={"Cache-Control": "no-cache"})


@router.get(f"{API}/session")
async def session_state(request: Request, services: ServicesDep) -> dict[str, Any]:
    """Whether this server needs a key, and whether this browser session has it."""
    key = services.settings.api.api_key
    return {"key_required": bool(key),
            "authenticated": not key or has_valid_session(request, key)}


@router.post(f"{API}/session", status_code=204)
async def open_session(body: SessionRequest, services: ServicesDep) -> Response:
    """Trade the API key for a cookie that lives as long as the browser session (no
    expiry, HttpOnly, same-site only): the page never stores the key itself."""
    key = services.settings.api.api_key
    if key and not hmac.compare_digest(body.api_key.encode(), key.encode()):
        raise Unauthorized("the API key is not valid")
    response = Response(status_code=204)
    if key:
        response.set_cookie(SESSION_COOKIE, session_token(key), httponly=True,
                            samesite="strict", path="/")
    return response


@router.delete(f"{API}/session", status_code=204)
async def close_session() -> Response:
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
