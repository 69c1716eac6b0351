"""A job (``msearch index``, ``msearch retry``, ``POST /files/batch-process``) and what it
came to: one view that ``GET /api/v1/jobs/{id}`` returns and both CLI backends print."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from msearch.app.status import FAILED_SHOWN, FailedView
from msearch.errors import NotFound
from msearch.store.adapter import UnifiedDatabaseAdapter
from msearch.store.records import FileStatus, JobStatus


@dataclass(frozen=True)
class JobView:
    job_id: str
    status: str
    total: int
    done: int
    failed: int
    # of the files done and not failed: those that are not media msearch indexes
    skipped: int
    progress: float
    # known once the job has finished; zero and empty while it runs
    indexed: int
    unchanged: int
    failures: list[FailedView]
    skipped_reasons: dict[str, int]

    @property
    def finished(self) -> bool:
        return self.status == JobStatus.FINISHED

    @property
    def nothing_indexable(self) -> bool:
        return bool(self.total) and self.skipped == self.total

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobView:
        return cls(**{**data, "failures": [FailedView(**f) for f in data["failures"]]})


async def job_view(adapter: UnifiedDatabaseAdapter, job_id: str) -> JobView:
    job = await adapter.get_job(job_id)
    if job is None:
        raise NotFound(f"no job with id {job_id}")
    counts = await adapter.job_file_counts(job.id)
    finished = job.status == JobStatus.FINISHED
    failures = await adapter.job_files(job.id, FileStatus.FAILED, FAILED_SHOWN) if finished else []
    return JobView(
        job_id=job.id,
        status=str(job.status),
        total=job.total,
        done=job.done,
        failed=job.failed,
        skipped=counts.get(FileStatus.SKIPPED, 0),
        progress=job.done / job.total if job.total else 1.0,
        indexed=counts.get(FileStatus.INDEXED, 0) if finished else 0,
        unchanged=await adapter.job_unchanged(job.id, job.created_at) if finished else 0,
        failures=[FailedView(r.path, r.error_code, r.error) for r in failures],
        skipped_reasons=await adapter.skipped_reasons(job.id) if finished else {},
    )
