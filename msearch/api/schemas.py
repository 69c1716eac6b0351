"""Request bodies and the error envelope. Other responses are plain dicts shaped by the
routes (documented in SPEC §7)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

MediaTypeName = Literal["image", "video", "audio", "document"]
# What was seen (the visual engine), heard (the sound engine), said (speech) or written
# (a document's text).
Modality = Literal["visual", "audio", "speech", "text", "document"]


class ProcessRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, max_length=4096)


class BatchProcessRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    paths: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(
        min_length=1, max_length=10_000
    )


class RetryRequest(BaseModel):
    """No body, or no ``file_ids``: every failed file."""

    model_config = ConfigDict(extra="forbid")
    file_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, min_length=1, max_length=10_000
    )


class SearchFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=20, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=10_000)
    media_types: list[MediaTypeName] | None = None
    # the engines asked: every one that reads the query when None
    modalities: list[Modality] | None = Field(default=None, min_length=1)
    folder: str | None = Field(default=None, max_length=4096)
    min_score: float | None = Field(default=None, ge=-1, le=1)
    taken_after: datetime | None = None
    taken_before: datetime | None = None
    group_by_file: bool = False


class TextSearchRequest(SearchFilters):
    query: str = Field(min_length=1, max_length=1000)


class ImageSearchByFileRequest(SearchFilters):
    file_id: str = Field(min_length=1, max_length=64)
    # a document's page (from 1): more like that page
    page: int | None = Field(default=None, ge=1, le=1_000_000)


class SoundSearchByFileRequest(SearchFilters):
    file_id: str = Field(min_length=1, max_length=64)
    # the moment of the file whose sound to match, in seconds
    start: float = Field(default=0.0, ge=0, le=1e7)


class ResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reset_type: Literal["all", "database", "index"]


class FolderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, max_length=4096)
    recursive: bool = True


class ErrorDetail(BaseModel):
    code: str
    message: str
    request_id: str


class ErrorEnvelope(BaseModel):
    error: ErrorDetail


# Every operation may answer with these (the schema says so; clients and schemathesis
# rely on it): bad input, auth, confinement, missing things, conflicts, size, validation,
# back-off, and a model or store that is not ready.
_ERRORS = {
    400: "invalid request",
    401: "an API key is required",
    403: "not allowed",
    404: "not found",
    409: "conflict",
    413: "payload too large",
    422: "validation error",
    429: "too many wrong keys",
    503: "not ready",
}
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorEnvelope, "description": text} for status, text in _ERRORS.items()
}
