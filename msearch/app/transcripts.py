"""What is said in a file: one view that ``GET /api/v1/files/{id}/transcript`` returns
(JSON, or WebVTT for a player's subtitles) and ``msearch transcript`` prints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from msearch.errors import NotFound
from msearch.store.adapter import SPEECH, UnifiedDatabaseAdapter
from msearch.store.records import Passage


@dataclass(frozen=True)
class TranscriptView:
    file_id: str
    segments: list[Passage]
    # why the file has no transcript although it has sound (the transcriber failed)
    error: dict[str, str] | None

    @property
    def languages(self) -> list[str]:
        return sorted({p.language for p in self.segments if p.language})

    def to_json(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "segments": [p.as_dict() for p in self.segments],
            "languages": self.languages,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TranscriptView:
        segments = [
            Passage(SPEECH, i, s["start"], s["end"], s["text"], s.get("language"))
            for i, s in enumerate(data["segments"])
        ]
        return cls(data["file_id"], segments, data.get("error"))

    def to_vtt(self) -> str:
        """WebVTT subtitles, a cue per segment (a cue's text may not hold "-->")."""
        cues = [
            f"{_vtt_time(p.start)} --> {_vtt_time(max(p.end, p.start + 0.5))}\n"
            + p.text.replace("-->", "->").strip()
            for p in self.segments
        ]
        return "\n\n".join(["WEBVTT", *cues]) + "\n"


def _vtt_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02}:{minutes:02}:{rest // 1000:02}.{rest % 1000:03}"


async def transcript_view(adapter: UnifiedDatabaseAdapter, file_id: str) -> TranscriptView:
    record = await adapter.get_file(file_id)
    if record is None:
        raise NotFound(f"no file with id {file_id}")
    speech = (record.audio or {}).get("speech")
    error = speech.get("error") if isinstance(speech, dict) else None
    return TranscriptView(record.id, await adapter.passages_of(record.id, SPEECH), error)
