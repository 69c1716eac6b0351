"""Request bodies. Responses are plain dicts shaped by the routes (documented in SPEC §7)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MediaTypeName = Literal["image", "video"]


class ProcessRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, max_length=4096)


class BatchProcessRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    paths: list[str] = Field(min_length=1, max_length=10_000)


class SearchFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=20, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=10_000)
    media_types: list[MediaTypeName] | None = None
    folder: str | None = Field(default=None, max_length=4096)
    min_score: float | None = Field(default=None, ge=-1, le=1)
    taken_after: datetime | None = None
    taken_before: datetime | None = None
    group_by_file: bool = False


class TextSearchRequest(SearchFilters):
    query: str = Field(min_length=1, max_length=1000)


class ImageSearchByFileRequest(SearchFilters):
    file_id: str = Field(min_length=1, max_length=64)


class ResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reset_type: Literal["all", "database", "index"]


class FolderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, max_length=4096)
    recursive: bool = True
