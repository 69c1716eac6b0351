"""How records look over HTTP."""

from __future__ import annotations

from typing import Any

from msearch.store.adapter import StoredHit
from msearch.store.records import FileRecord

API = "/api/v1"


def file_status(record: FileRecord) -> dict[str, Any]:
    public = record.public()
    return {
        key: public[key]
        for key in ("file_id", "path", "status", "progress", "error", "media_type", "scenes")
    }


def file_summary(record: FileRecord) -> dict[str, Any]:
    return {"file_id": record.id, "path": record.path, "status": str(record.status)}


def file_detail(record: FileRecord) -> dict[str, Any]:
    return {
        **record.public(),
        "thumbnail_url": None
        if record.media_type == "audio"
        else f"{API}/files/{record.id}/thumbnail",
        "content_url": f"{API}/files/{record.id}/content",
    }


def _thumbnail_url(hit: StoredHit) -> str | None:
    if hit.file.media_type == "audio":  # no picture
        return None
    url = f"{API}/files/{hit.file.id}/thumbnail"
    if hit.page is not None:
        return f"{url}?page={hit.page}"
    return f"{url}?scene={hit.scene.index}" if hit.scene and hit.scene.index else url


def search_hit(hit: StoredHit) -> dict[str, Any]:
    record = hit.file
    result: dict[str, Any] = {
        "file_id": record.id,
        "path": record.path,
        "media_type": record.media_type,
        "score": round(hit.score, 6),
        "kind": hit.kind,
        "thumbnail_url": _thumbnail_url(hit),
        "scene": hit.scene.as_dict() if hit.scene else None,
    }
    if hit.heard is not None:
        result["audio"] = _heard(hit)
    if hit.page is not None:
        result["page"] = _page(hit)
    elif hit.spoken is not None:
        result["speech"] = _spoken(hit)
    if hit.rank_score is not None:
        result["rank_score"] = hit.rank_score
    if hit.more:
        result["more_scenes"] = [
            {**m.scene.as_dict(), "score": round(m.score, 6), "thumbnail_url": _thumbnail_url(m)}
            for m in hit.more
            if m.scene is not None
        ]
        heard = [{**_heard(m), "score": round(m.score, 6)} for m in hit.more if m.heard]
        if heard:
            result["more_audio"] = heard
        spoken = [
            {**_spoken(m), "score": round(m.score, 6)}
            for m in hit.more
            if m.spoken and m.page is None
        ]
        if spoken:
            result["more_speech"] = spoken
        pages = [
            {**_page(m), "score": round(m.score, 6), "kind": m.kind}
            for m in hit.more
            if m.page is not None and m.page != hit.page
        ]
        if pages:
            result["more_pages"] = pages
    return result


def _spoken(hit: StoredHit) -> dict[str, Any]:
    """The words said where the query matched: ``text`` is HTML-escaped, the matching
    parts in <mark> tags."""
    assert hit.spoken is not None
    return {"start": hit.spoken.start, "end": hit.spoken.end, "text": hit.marked}


def _page(hit: StoredHit) -> dict[str, Any]:
    """The page (from 1) and its words: around the match, HTML-escaped with the matching
    parts in <mark> tags, or how the page begins when it was found by its looks."""
    return {"number": hit.page, "text": hit.marked, "thumbnail_url": _thumbnail_url(hit)}


def _heard(hit: StoredHit) -> dict[str, float | None]:
    """Where the sound is heard, and the length of the recording it is heard in."""
    assert hit.heard is not None
    return {"start": hit.heard[0], "end": hit.heard[1], "duration": hit.file.duration}
