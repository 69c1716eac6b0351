"""The web page at ``/`` (static files shipped in the package) and its session cookie."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from msearch.api.deps import ServicesDep
from msearch.api.security import (
    SESSION_COOKIE,
    SessionStore,
    check_same_origin,
    has_valid_session,
    verify_key,
)
from msearch.api.views import API

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
    return {"key_required": bool(key), "authenticated": not key or has_valid_session(request)}


@router.post(f"{API}/session", status_code=204)
async def open_session(body: SessionRequest, request: Request, services: ServicesDep) -> Response:
    """Trade the API key for a cookie holding a fresh random session token (HttpOnly,
    same-site only, no expiry date: it ends with the browser session, after
    ``api.session_idle_s`` unused, or at logout). The page never stores the key."""
    check_same_origin(request)
    key = services.settings.api.api_key
    response = Response(status_code=204)
    if key:
        verify_key(request, body.api_key, key)
        sessions: SessionStore = request.app.state.sessions
        response.set_cookie(
            SESSION_COOKIE, sessions.open(), httponly=True, samesite="strict", path="/"
        )
    return response


@router.delete(f"{API}/session", status_code=204)
async def close_session(request: Request) -> Response:
    """Log out: the session's token stops working at once, not only in this browser."""
    check_same_origin(request)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        sessions: SessionStore = request.app.state.sessions
        sessions.revoke(token)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
