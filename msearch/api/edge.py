"""What every request meets first: its id, the Host check, the security headers, and the
error envelope for anything that escaped the handlers. One plain ASGI layer: Starlette's
``BaseHTTPMiddleware`` costs a task group and a stream per request, several times over."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from msearch.api.errors import error_response

log = logging.getLogger(__name__)
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

# The page loads only its own scripts, styles, thumbnails and media, and no page may
# frame it. FastAPI's own /docs and /redoc pages fetch their assets elsewhere.
_CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
_DOCS_CSP = "frame-ancestors 'none'"
_DOCS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin")]


class Edge:
    def __init__(self, app: ASGIApp, *, host_allowed: Callable[[str], bool]) -> None:
        self._app = app
        self._host_allowed = host_allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        extra = [*_HEADERS, (b"x-request-id", request_id.encode()),
                 (b"content-security-policy",
                  (_DOCS_CSP if scope["path"] in _DOCS else _CSP).encode())]
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                names = {b"x-request-id"}
                message["headers"] = [
                    *(h for h in message.get("headers", []) if h[0].lower() not in names),
                    *extra]
            await send(message)

        if not self._host_allowed(headers.get(b"host", b"").decode("latin-1")):
            response = error_response(Request(scope), 400, "host_not_allowed",
                                      "this server does not answer to that host name; add "
                                      "it to api.allowed_hosts if it is yours")
            await response(scope, receive, send_with_headers)
            return
        try:
            await self._app(scope, receive, send_with_headers)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if started:
                raise
            response = error_response(Request(scope), 500, "internal_error",
                                      "internal error; see the server log")
            await response(scope, receive, send_with_headers)
