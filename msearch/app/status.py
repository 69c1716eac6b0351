"""The library's status: what ``msearch status`` shows, locally or from a server
(``GET /api/v1/system/status``), in one shape."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from msearch.config import Settings
from msearch.store.adapter import UnifiedDatabaseAdapter
from msearch.watch.monitor import folder_summaries

# How many failed files the status lists (the files listing pages through all of them).
FAILED_SHOWN = 20


@dataclass(frozen=True)
class EngineView:
    kind: str
    model: str
    dim: int
    vectors: int


@dataclass(frozen=True)
class FailedView:
    path: str
    code: str | None
    message: str | None


@dataclass(frozen=True)
class StatusView:
    data_dir: str
    configured_model: str
    # the visual model that built the index: {"id", "dim"}, None before the first file
    index_model: dict[str, Any] | None
    engines: list[EngineView]
    files: dict[str, int]
    vectors: int
    folders: list[dict[str, Any]]
    failed: list[FailedView]
    skipped: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StatusView:
        return cls(
            **{
                **data,
                "engines": [EngineView(**e) for e in data["engines"]],
                "failed": [FailedView(**f) for f in data["failed"]],
            }
        )


async def library_status(adapter: UnifiedDatabaseAdapter, settings: Settings) -> StatusView:
    """Needs only the stores (no model), so it answers while a model loads or is broken."""
    stored = await adapter.stored_models()
    visual = stored.get("visual")
    vectors = await adapter.vector_counts()
    failed, _ = await adapter.list_files(status="failed", limit=FAILED_SHOWN)
    return StatusView(
        data_dir=str(settings.data_dir),
        configured_model=settings.embedding.model,
        index_model={"id": visual[0], "dim": visual[1]} if visual else None,
        engines=[
            EngineView(kind, model, dim, vectors.get(kind, 0))
            for kind, (model, dim, _) in stored.items()
        ],
        files=await adapter.status_counts(),
        vectors=vectors.get("visual", 0),
        folders=await folder_summaries(adapter),
        failed=[FailedView(r.path, r.error_code, r.error) for r in failed],
        skipped=await adapter.skipped_reasons(),
    )
