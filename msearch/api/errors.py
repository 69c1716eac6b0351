"""Request ids and the one error envelope: ``{"error": {"code", "message", "request_id"}}``."""

from __future__ import annotations

from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from msearch.errors import MSearchError, TooManyAttempts


def request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "-"))


def error_response(request: Request, status: int, code: str, message: str) -> JSONResponse:
    rid = request_id(request)
    return JSONResponse(
        {"error": {"code": code, "message": message, "request_id": rid}},
        status_code=status,
        headers={"X-Request-ID": rid},
    )


def install_error_handling(app: FastAPI) -> None:
    """The envelope for msearch's errors, validation errors and HTTP errors (request ids
    and anything unexpected are the edge's, ``msearch.api.edge``)."""

    @app.exception_handler(MSearchError)
    async def _msearch_error(request: Request, exc: MSearchError) -> JSONResponse:
        response = error_response(request, exc.http_status, exc.code, exc.message)
        if isinstance(exc, TooManyAttempts):
            response.headers["Retry-After"] = str(exc.retry_after)
        elif exc.code == "model_loading":  # the server has just started: ask again soon
            response.headers["Retry-After"] = "2"
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: "
            f"{e.get('msg', 'invalid')}"
            for e in exc.errors()
        )
        return error_response(request, 422, "validation_error", problems or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        phrase = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
        response = error_response(request, exc.status_code, phrase, str(exc.detail))
        if exc.status_code == 405:
            response.headers["Allow"] = ", ".join(_allowed_methods(request))
        return response


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first
    route's, and several routes may share a path)."""
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]
