"""The FastAPI application factory."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from msearch import __version__
from msearch.api import (
    routes_docs,
    routes_files,
    routes_folders,
    routes_search,
    routes_system,
    routes_web,
)
from msearch.api.edge import Edge
from msearch.api.errors import install_error_handling
from msearch.api.limits import BodyLimit
from msearch.api.schemas import ERROR_RESPONSES
from msearch.api.security import FailedKeyThrottle, SessionStore, host_allowed
from msearch.config import Settings
from msearch.embedding.base import EmbeddingEngine
from msearch.embedding.registry import EngineRegistry
from msearch.heap import freeze_long_lived
from msearch.services import Services, build_services


def _exit_if_fatal(app: FastAPI, services: Services) -> None:
    """uvicorn stops on SIGTERM; ``msearch serve`` then exits non-zero (app.state.fatal)."""
    if services.fatal is not None:
        app.state.fatal = services.fatal
        os.kill(os.getpid(), signal.SIGTERM)


def create_app(
    settings: Settings,
    *,
    owner: dict[str, Any] | None = None,
    engine: EmbeddingEngine | EngineRegistry | None = None,
    background_start: bool = False,
    freeze_heap: bool = False,
) -> FastAPI:
    """The app; its lifespan opens the data directory and starts the model (degraded mode
    if the model cannot load, so health and listings still answer). With
    ``background_start`` the port opens before the model has loaded. An ``engine`` (or a
    registry of them) passed in is shared: the app neither loads nor stops its own.
    ``freeze_heap`` (a server process of its own) freezes what start-up built."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await build_services(
            settings,
            owner=owner,
            engine=None if isinstance(engine, EngineRegistry) else engine,
            engines=engine if isinstance(engine, EngineRegistry) else None,
            allow_degraded=True,
            watch=True,
            background=background_start,
        )
        app.state.services = services
        if services.starting is not None:
            services.starting.add_done_callback(lambda _: _exit_if_fatal(app, services))
        if freeze_heap:
            if services.starting is None:
                freeze_long_lived()
            else:
                services.starting.add_done_callback(lambda _: freeze_long_lived())
        try:
            yield
        finally:
            await services.aclose()

    # FastAPI's OpenTelemetry bridge asks the environment for a provider on every request.
    app = FastAPI(
        title="msearch",
        version=__version__,
        lifespan=lifespan,
        description="Self-hosted multimodal media search",
        docs_url=None,
        redoc_url=None,  # served with local assets: routes_docs
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.sessions = SessionStore(settings.api.session_idle_s)
    app.state.key_throttle = FailedKeyThrottle(enabled=settings.api.failed_key_backoff)
    # The body limit inside the edge, so that its 413 has a request id and the headers.
    app.add_middleware(
        BodyLimit,
        limit=int(settings.api.max_upload_mb * (1 << 20)) + (1 << 16),
        limit_text=f"{settings.api.max_upload_mb:g} MB",
    )
    app.add_middleware(Edge, host_allowed=partial(host_allowed, settings=settings))
    install_error_handling(app)
    for router in (
        routes_system.router,
        routes_files.router,
        routes_search.router,
        routes_folders.router,
        routes_web.router,
    ):
        app.include_router(router, responses=ERROR_RESPONSES)
    app.include_router(routes_docs.router)
    app.mount("/ui", StaticFiles(directory=routes_web.WEB_ROOT), name="ui")
    app.mount(routes_docs.ASSETS_URL, routes_docs.assets, name="docs-assets")
    return app
