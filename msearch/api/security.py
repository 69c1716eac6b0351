"""Who may call, and which paths a request may touch."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from pathlib import Path

from fastapi import Request

from msearch.config import Settings
from msearch.errors import Forbidden, InvalidRequest, PathNotAllowed, Unauthorized


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


SESSION_COOKIE = "msearch_session"


def session_token(key: str) -> str:
    """What the web page's session cookie holds: derived from the key, never the key."""
    return hmac.new(key.encode(), b"msearch web session", hashlib.sha256).hexdigest()


def has_valid_session(request: Request, key: str) -> bool:
    cookie = request.cookies.get(SESSION_COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), session_token(key).encode())


def check_api_key(request: Request, settings: Settings, *, mutating: bool) -> None:
    """With a key configured every /api call needs it (as a Bearer token, or the web
    page's session cookie). Without one, changes are refused when the server listens
    beyond loopback (anyone on the network could reach them)."""
    key = settings.api.api_key
    if key:
        if has_valid_session(request, key):
            return
        presented = _presented_key(request)
        if presented is None:
            raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>'")
        if not hmac.compare_digest(presented.encode(), key.encode()):
            raise Unauthorized("the API key is not valid")
    elif mutating and not is_loopback(settings.api.host):
        raise Forbidden("this server listens beyond loopback without api.api_key; "
                        "set MSEARCH_API__API_KEY to allow changes")


def allowed_roots(settings: Settings) -> list[Path]:
    roots = [*settings.api.allowed_roots, *settings.file_monitoring.folders]
    return [r.resolve() for r in roots]


def confine_path(raw: str, settings: Settings) -> Path:
    """The real path (symlinks resolved) of ``raw`` if it lies inside an allowed root.

    Relative paths are taken relative to the first root. Anything that escapes (``..``,
    absolute paths elsewhere, a symlink pointing out) is refused with 403.
    """
    if not raw or "\x00" in raw:
        raise InvalidRequest("path is empty or contains a NUL byte")
    roots = allowed_roots(settings)
    if not roots:
        raise PathNotAllowed("no allowed roots are configured (api.allowed_roots), so the "
                             "API may not touch any path")
    candidate = Path(raw).expanduser()
    if not candidate.is_absolute():
        candidate = roots[0] / candidate
    try:
        resolved = candidate.resolve(strict=False)
    except (OSError, RuntimeError) as exc:
        raise PathNotAllowed(f"cannot resolve path: {exc}") from exc
    for root in roots:
        if resolved == root or resolved.is_relative_to(root):
            return resolved
    raise PathNotAllowed("path is outside the allowed roots")
