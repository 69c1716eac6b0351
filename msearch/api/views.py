"""How records look over HTTP."""

from __future__ import annotations

from typing import Any

from msearch.store.adapter import StoredHit
from msearch.store.records import FileRecord

API = "/api/v1"


def file_status(record: FileRecord) -> dict[str, Any]:
    public = record.public()
    return {key: public[key] for key in
            ("file_id", "path", "status", "progress", "error", "media_type", "scenes")}


def file_summary(record: FileRecord) -> dict[str, Any]:
    return {"file_id": record.id, "path": record.path, "status": str(record.status)}


def file_detail(record: FileRecord) -> dict[str, Any]:
    return {**record.public(), "thumbnail_url": f"{API}/files/{record.id}/thumbnail",
            "content_url": f"{API}/files/{record.id}/content"}


def search_hit(hit: StoredHit) -> dict[str, Any]:
    record = hit.file
    return {
        "file_id": record.id,
        "path": record.path,
        "media_type": record.media_type,
        "score": round(hit.score, 6),
        "thumbnail_url": f"{API}/files/{record.id}/thumbnail",
        "scene": hit.scene.as_dict() if hit.scene else None,
    }
