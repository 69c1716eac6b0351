"""/health, jobs and /api/v1/system."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from msearch import __version__
from msearch.api.deps import ReadAccess, ServicesDep, WriteAccess
from msearch.api.schemas import ResetRequest
from msearch.api.views import API
from msearch.app.jobs import job_view
from msearch.app.status import library_status
from msearch.config import SpeechSettings
from msearch.metrics import exposition

router = APIRouter(tags=["system"])


@router.get("/health")
async def health(services: ServicesDep) -> JSONResponse:
    if not services.ready:
        loading = services.starting is not None
        return JSONResponse(
            {
                "status": "starting" if loading else "degraded",
                "version": __version__,
                "model": {
                    "id": services.settings.embedding.model,
                    "dim": None,
                    "loading": loading,
                    "error": services.model_error,
                },
                "engines": [{"kind": kind} for kind in services.engines.kinds],
                "counts": {"files": await services.adapter.status_counts()},
            },
            status_code=503,
        )
    vectors = await services.adapter.vector_counts()
    return JSONResponse(
        {
            "status": "ok",
            "version": __version__,
            "model": {"id": services.engine.model_id, "dim": services.engine.dim},
            "engines": [
                {"kind": kind, "model": engine.model_id, "dim": engine.dim, "vectors": count}
                for kind, engine in services.engines
                for count in [vectors.get(kind, 0)]
            ],
            # optional engines whose model could not load: msearch runs without them
            "engines_off": [
                *(
                    {"kind": kind, "reason": reason}
                    for kind, reason in services.engines.unavailable.items()
                ),
                *(
                    [{"kind": "speech", "reason": services.speech_off}]
                    if services.speech_off and services.settings.speech.enabled
                    else []
                ),
            ],
            # what transcribes speech (None: speech is off, engines_off says why)
            "speech": None if services.speech_off else _transcriber(services.settings.speech),
            # a model switch under way: search answers from the old model until it ends
            "switching": [
                {
                    "kind": switch.kind,
                    "from": switch.old_model,
                    "to": switch.new_model,
                    "remaining": services.orchestrator.queued,
                }
                for switch in services.adapter.switches
            ],
            "counts": {
                **await services.adapter.counts(vectors),
                "queued": services.orchestrator.queued,
            },
            "indexing": {"paused": disk.paused if (disk := services.orchestrator.disk) else None},
        }
    )


def _transcriber(speech: SpeechSettings) -> dict[str, str]:
    return {"engine": speech.engine, "transcribed_by": speech.key}


@router.get(
    "/metrics",
    dependencies=[ReadAccess],
    responses={200: {"description": "Prometheus text format", "content": {"text/plain": {}}}},
)
async def metrics(services: ServicesDep) -> PlainTextResponse:
    """Prometheus text format (behind the API key, like the rest, when one is set)."""
    files = await services.adapter.status_type_counts()
    return PlainTextResponse(
        exposition(files, services.orchestrator.queued), media_type=CONTENT_TYPE_LATEST
    )


@router.get(f"{API}/jobs/{{job_id}}", dependencies=[ReadAccess])
async def job_status(job_id: str, services: ServicesDep) -> dict[str, Any]:
    """What ``msearch index`` and ``retry`` print: progress, and once finished the outcome."""
    return (await job_view(services.adapter, job_id)).to_json()


@router.get(f"{API}/system/status", dependencies=[ReadAccess])
async def status(services: ServicesDep) -> dict[str, Any]:
    """What ``msearch status`` shows: the same view, local or remote."""
    return (await library_status(services.adapter, services.settings)).to_json()


@router.post(f"{API}/system/reset", dependencies=[WriteAccess])
async def reset(body: ResetRequest, services: ServicesDep) -> dict[str, Any]:
    removed = await services.reset(body.reset_type)
    return {"reset_type": body.reset_type, "removed": removed}
