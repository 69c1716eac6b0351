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
from msearch.metrics import HTTP_REQUESTS

log = logging.getLogger(__name__)
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

# The page loads only its own scripts, styles, thumbnails and media, and no page may
# frame it. /docs and /redoc start their UIs with an inline script, and ReDoc works in a
# blob: worker; their assets are msearch's own too (routes_docs).
_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' "
    "data:; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
_DOCS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


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
        extra = [
            *_HEADERS,
            (b"x-request-id", request_id.encode()),
            (b"content-security-policy", (_DOCS_CSP if scope["path"] in _DOCS else _CSP).encode()),
        ]
        started = False
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                names = {b"x-request-id"}
                message["headers"] = [
                    *(h for h in message.get("headers", []) if h[0].lower() not in names),
                    *extra,
                ]
            await send(message)

        try:
            await self._answer(scope, receive, send_with_headers, headers, lambda: started)
        finally:
            # The route's template, never the raw path: one series per route, not per file.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            HTTP_REQUESTS.labels(route=route, status=str(status)).inc()

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[bytes, bytes],
        started: Callable[[], bool],
    ) -> None:
        if not self._host_allowed(headers.get(b"host", b"").decode("latin-1")):
            response = error_response(
                Request(scope),
                400,
                "host_not_allowed",
                "this server does not answer to that host name; add "
                "it to api.allowed_hosts if it is yours",
            )
            await response(scope, receive, send)
            return
        try:
            await self._app(scope, receive, send)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if started():
                raise
            response = error_response(
                Request(scope), 500, "internal_error", "internal error; see the server log"
            )
            await response(scope, receive, send)
