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
    upload_limit = int(settings.api.max_upload_mb * (1 << 20)) + (1 << 16)

    @app.middleware("http")
    async def _reject_large_bodies(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # Refuse oversized uploads before reading them; chunked bodies are capped later.
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > upload_limit:
            return error_response(request, 413, "payload_too_large",
                                  f"the request body is larger than "
                                  f"{settings.api.max_upload_mb:g} MB (api.max_upload_mb)")
        return await call_next(request)

    # Added last so it runs first: every response, the 413 above included, gets a request id.
    install_error_handling(app)
    app.include_router(routes_system.router)
    app.include_router(routes_files.router)
    app.include_router(routes_search.router)
    app.include_router(routes_folders.router)
    app.include_router(routes_web.router)
    app.mount("/ui", StaticFiles(directory=routes_web.WEB_ROOT), name="ui")
    return app
