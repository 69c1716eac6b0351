"""Who may call, and which paths a request may touch."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import Request

from msearch.config import Settings, is_loopback
from msearch.errors import (
    Forbidden,
    InvalidRequest,
    PathNotAllowed,
    TooManyAttempts,
    Unauthorized,
)


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


SESSION_COOKIE = "msearch_session"


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class SessionStore:
    """The web page's sessions: random tokens, kept only as hashes in memory, that end
    after ``idle_s`` unused, at logout, or when the server restarts (so a changed key,
    which needs a restart, ends them all)."""

    def __init__(self, idle_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._idle_s = idle_s
        self._clock = clock
        self._expiry: dict[bytes, float] = {}

    def open(self) -> str:
        self._expire()
        token = secrets.token_urlsafe(32)
        self._expiry[_digest(token)] = self._clock() + self._idle_s
        return token

    def valid(self, token: str) -> bool:
        # Looked up by hash: the time a lookup takes says nothing about a live token.
        digest = _digest(token)
        expiry = self._expiry.get(digest)
        now = self._clock()
        if expiry is None or expiry <= now:
            self._expiry.pop(digest, None)
            return False
        self._expiry[digest] = now + self._idle_s
        return True

    def revoke(self, token: str) -> None:
        self._expiry.pop(_digest(token), None)

    def _expire(self) -> None:
        now = self._clock()
        for digest in [d for d, t in self._expiry.items() if t <= now]:
            del self._expiry[digest]


class FailedKeyThrottle:
    """Per-client back-off after wrong keys: after ``free`` failures each further one
    doubles the wait (up to ``max_wait_s``); a right key clears the client's record."""

    def __init__(
        self,
        *,
        free: int = 5,
        max_wait_s: float = 300.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        enabled: bool = True,
    ) -> None:
        self._enabled = enabled
        self._free = free
        self._max_wait = max_wait_s
        self._max_clients = max_clients
        self._clock = clock
        self._clients: dict[str, tuple[int, float]] = {}  # failures, blocked until

    def check(self, client: str) -> None:
        _, until = self._clients.get(client, (0, 0.0))
        wait = until - self._clock()
        if wait > 0:
            raise TooManyAttempts(
                f"too many wrong API keys from this client; try again in {math.ceil(wait)} s",
                retry_after=math.ceil(wait),
            )

    def failed(self, client: str) -> None:
        if not self._enabled:
            return
        failures = self._clients.pop(client, (0, 0.0))[0] + 1
        if len(self._clients) >= self._max_clients:
            del self._clients[next(iter(self._clients))]  # the longest untouched
        extra = failures - self._free
        until = self._clock() + min(self._max_wait, 2.0 ** (extra - 1)) if extra > 0 else 0.0
        self._clients[client] = (failures, until)

    def succeeded(self, client: str) -> None:
        self._clients.pop(client, None)


def _client(request: Request) -> str:
    return request.client.host if request.client else "-"


def has_valid_session(request: Request) -> bool:
    token = request.cookies.get(SESSION_COOKIE, "")
    sessions: SessionStore = request.app.state.sessions
    return bool(token) and sessions.valid(token)


def verify_key(request: Request, presented: str, key: str) -> None:
    """Compare in constant time, behind the client's back-off."""
    throttle: FailedKeyThrottle = request.app.state.key_throttle
    throttle.check(_client(request))
    if not hmac.compare_digest(_digest(presented), _digest(key)):
        throttle.failed(_client(request))
        raise Unauthorized("the API key is not valid")
    throttle.succeeded(_client(request))


def check_api_key(request: Request, settings: Settings, *, mutating: bool) -> None:
    """With a key configured every /api call needs it (as a Bearer token, or the web
    page's session cookie). Without one, changes are refused when the server listens
    beyond loopback (anyone on the network could reach them). A change that a browser
    could send on its own (cookie or no key at all) must come from this origin."""
    key = settings.api.api_key
    presented = _presented_key(request)
    if key:
        if presented is not None:
            verify_key(request, presented, key)
            return
        if not has_valid_session(request):
            raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>'")
    elif mutating and not is_loopback(settings.api.host):
        raise Forbidden(
            "this server listens beyond loopback without api.api_key; "
            "set MSEARCH_API__API_KEY to allow changes"
        )
    if mutating:
        check_same_origin(request)


def check_same_origin(request: Request) -> None:
    """Refuse what another site's page made the browser send (CSRF): browsers say where a
    request comes from in ``Sec-Fetch-Site`` and ``Origin``; clients that are not
    browsers send neither."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise Forbidden(f"a {site} request may not change anything here")
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise Forbidden("a request from another origin may not change anything here")


def _host_name(header: str) -> str:
    if header.startswith("["):  # [::1]:8000
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


def host_allowed(header: str, settings: Settings) -> bool:
    """Does the ``Host`` header name this server? IP literals and localhost always do
    (a DNS-rebinding page has a name of its own); other names only when configured in
    ``api.allowed_hosts`` (``*`` allows any)."""
    host = _host_name(header.strip().lower()).rstrip(".")
    allowed = [h.lower() for h in settings.api.allowed_hosts]
    if "*" in allowed or host in allowed or host == settings.api.host.lower():
        return True
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def allowed_roots(settings: Settings) -> list[Path]:
    return settings.allowed_roots()


_MAX_NAME_BYTES = 255
_MAX_PATH_BYTES = 4000


def _checked_path(raw: str, what: str) -> Path:
    """``raw`` as a path, or a 400 for what no filesystem accepts (NUL bytes, names
    longer than 255 bytes, ``~user`` of nobody)."""
    if not raw or "\x00" in raw:
        raise InvalidRequest(f"{what} is empty or contains a NUL byte")
    if len(raw.encode(errors="surrogateescape")) > _MAX_PATH_BYTES:
        raise InvalidRequest(f"{what} is longer than {_MAX_PATH_BYTES} bytes")
    if any(len(part.encode(errors="surrogateescape")) > _MAX_NAME_BYTES for part in raw.split("/")):
        raise InvalidRequest(f"{what} has a name longer than {_MAX_NAME_BYTES} bytes")
    try:
        return Path(raw).expanduser()
    except RuntimeError as exc:  # ~nosuchuser
        raise InvalidRequest(f"{what}: {exc}") from exc


def folder_filter(raw: str | None) -> str | None:
    """A ``folder`` filter as the absolute, resolved path the index records."""
    if raw is None:
        return None
    try:
        return str(_checked_path(raw, "folder").resolve())
    except (OSError, RuntimeError) as exc:
        raise InvalidRequest(f"folder cannot be resolved: {exc}") from exc


def confine_path(raw: str, settings: Settings) -> Path:
    """The real path (symlinks resolved) of ``raw`` if it lies inside an allowed root.

    Relative paths are taken relative to the first root. Anything that escapes (``..``,
    absolute paths elsewhere, a symlink pointing out) is refused with 403.
    """
    candidate = _checked_path(raw, "path")
    roots = allowed_roots(settings)
    if not roots:
        raise PathNotAllowed(
            "no allowed roots are configured (api.allowed_roots, or "
            "MSEARCH_API__ALLOWED_ROOTS), so the API may not touch any path"
        )
    if not candidate.is_absolute():
        candidate = roots[0] / candidate
    try:
        resolved = candidate.resolve(strict=False)
    except (OSError, RuntimeError) as exc:
        raise PathNotAllowed(f"cannot resolve path: {exc}") from exc
    for root in roots:
        if resolved == root or resolved.is_relative_to(root):
            return resolved
    raise PathNotAllowed(
        f"path is outside the allowed roots ({', '.join(str(r) for r in roots)}); add it "
        "to api.allowed_roots (MSEARCH_API__ALLOWED_ROOTS) and restart msearch"
    )
