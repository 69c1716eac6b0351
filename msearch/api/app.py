"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from msearch import __version__
from msearch.api import (
    routes_files,
    routes_folders,
    routes_search,
    routes_system,
    routes_web,
)
from msearch.api.errors import error_response, install_error_handling
from msearch.api.limits import BodyLimit
from msearch.api.schemas import ERROR_RESPONSES
from msearch.api.security import FailedKeyThrottle, SessionStore, host_allowed
from msearch.config import Settings
from msearch.embedding.base import EmbeddingEngine
from msearch.services import build_services


def create_app(
    settings: Settings,
    *,
    owner: dict[str, Any] | None = None,
    engine: EmbeddingEngine | None = None,
) -> FastAPI:
    """The app; its lifespan opens the data directory and starts the model (degraded mode
    if the model cannot load, so health and listings still answer)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await build_services(settings, owner=owner, engine=engine,
                                        allow_degraded=True, watch=True)
        app.state.services = services
        try:
            yield
        finally:
            await services.aclose()

    app = FastAPI(title="msearch", version=__version__, lifespan=lifespan,
                  description="Self-hosted multimodal media search")
    app.state.sessions = SessionStore(settings.api.session_idle_s)
    app.state.key_throttle = FailedKeyThrottle()
    # Innermost of the middlewares, so its 413 still gets a request id and the headers.
    app.add_middleware(BodyLimit, limit=int(settings.api.max_upload_mb * (1 << 20)) + (1 << 16),
                       limit_text=f"{settings.api.max_upload_mb:g} MB")

    @app.middleware("http")
    async def _edge(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if host_allowed(request.headers.get("host", ""), settings):
            response = await call_next(request)
        else:
            response = error_response(request, 400, "host_not_allowed",
                                      "this server does not answer to that host name; add "
                                      "it to api.allowed_hosts if it is yours")
        response.headers.update(_security_headers(request.url.path))
        return response

    # Added last so it runs first: every response, the 413 above included, gets a request id.
    install_error_handling(app)
    for router in (routes_system.router, routes_files.router, routes_search.router,
                   routes_folders.router, routes_web.router):
        app.include_router(router, responses=ERROR_RESPONSES)
    app.mount("/ui", StaticFiles(directory=routes_web.WEB_ROOT), name="ui")
    return app


# The page loads only its own scripts, styles, thumbnails and media, and no page may
# frame it. FastAPI's own /docs and /redoc pages fetch their assets elsewhere.
_CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
_DOCS_CSP = "frame-ancestors 'none'"
_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin"}


def _security_headers(path: str) -> dict[str, str]:
    csp = _DOCS_CSP if path in ("/docs", "/redoc", "/docs/oauth2-redirect") else _CSP
    return {**_HEADERS, "Content-Security-Policy": csp}
