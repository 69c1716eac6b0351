"""What is said, through the whole product: sentences spoken by flite at known seconds in
audio files and videos, transcribed by pocketsphinx (a real recognizer), found by their
words (a part of a word too) with the second they are said at; transcripts as JSON and
WebVTT; a transcriber that fails costs a file its words only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.app import api_client, index_through_api
from support.audio_factory import tone, video_with_sound
from support.speech_factory import spoken

from msearch.config import Settings, SpeechSettings
from msearch.embedding.infinity import InfinityEngine
from msearch.speech.sphinx import SphinxTranscriber

BUDGET = "welcome to the budget meeting"
DOG = "the dog is barking at the red car"
# the recognizer the content assertions rely on (the default, faster-whisper, needs a model
# that cannot be downloaded here: tests/integration/test_whisper.py runs it on one built here)
SPHINX = {"engine": "pocketsphinx"}


@pytest.fixture
def speech_settings(
    make_settings: Callable[..., Settings], tiny_clap_dir: Path
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        audio = {"model": str(tiny_clap_dir), "window_seconds": 4, "hop_seconds": 4}
        return make_settings(audio=audio, speech=SPHINX, **overrides)

    return make


async def _said(client: httpx.AsyncClient, query: str, **options: Any) -> list[dict[str, Any]]:
    reply = await client.post("/api/v1/search/text", json={"query": query, **options})
    assert reply.status_code == 200, reply.text
    return list(reply.json()["results"])


def test_the_transcriber_hears_each_sentence_where_it_is_said(tmp_path: Path) -> None:
    recording = spoken(tmp_path / "talk.flac", [(3.0, BUDGET), (12.0, DOG)], 18.0)
    segments = list(SphinxTranscriber(SpeechSettings()).transcribe(recording))
    assert len(segments) == 2, segments
    budget, dog = segments
    assert "budget meeting" in budget.text and abs(budget.start - 3.0) <= 1.5
    assert "barking" in dog.text and "red car" in dog.text and abs(dog.start - 12.0) <= 1.5
    assert budget.end < dog.start and {s.language for s in segments} == {"en"}


def test_a_long_stretch_taken_for_speech_is_cut_into_bounded_pieces(tmp_path: Path) -> None:
    """A steady tone sounds like speech to the endpointer: it is handed on in pieces of at
    most MAX_SEGMENT_S, each starting where the one before ended (memory and each decode
    stay bounded, whatever the length)."""
    import io
    import itertools
    import subprocess

    from msearch.speech.sphinx import MAX_SEGMENT_S, RATE, _speech

    pcm = subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-t",
            "95",
            "-i",
            f"sine=frequency=300:sample_rate={RATE}",
            "-f",
            "s16le",
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout
    pieces = list(_speech(io.BytesIO(pcm), None, None))
    assert len(pieces) >= 3
    for (start, samples), (following, _) in itertools.pairwise(pieces):
        assert len(samples) <= MAX_SEGMENT_S * 2 * RATE + 4096
        assert following == pytest.approx(start + len(samples) / (2 * RATE), abs=0.05)


@pytest.mark.slow
def test_an_hour_is_transcribed_with_progress_to_its_last_sentence(tmp_path: Path) -> None:
    hour = spoken(tmp_path / "hour.flac", [(3590.0, BUDGET)], 3600.0)
    heard: list[float] = []
    segments = list(SphinxTranscriber(SpeechSettings()).transcribe(hour, progress=heard.append))
    assert [s.text for s in segments] == [BUDGET]
    assert abs(segments[0].start - 3590.0) <= 1.5
    assert heard == sorted(heard) and heard[-1] >= 3500  # progress all the way


async def test_spoken_words_are_found_where_they_are_said(
    speech_settings: Callable[..., Settings], tiny_engine: InfinityEngine, media_dir: Path
) -> None:
    paths = [
        spoken(media_dir / "meeting.flac", [(3.0, BUDGET), (12.0, DOG)], 18.0),
        spoken(media_dir / "street.mp4", [(5.0, DOG)], 9.0, video=True),
        video_with_sound(media_dir / "mute.mp4", 3.0, sound=None),
        video_with_sound(media_dir / "hum.mp4", 3.0),
    ]
    async with api_client(speech_settings(), tiny_engine) as client:
        files = await index_through_api(client, paths)
        assert {n: f["status"] for n, f in files.items()} == {p.name: "indexed" for p in paths}
        assert files["meeting.flac"]["audio"]["speech"]["segments"] == 2
        assert files["street.mp4"]["audio"]["speech"]["languages"] == ["en"]
        assert files["hum.mp4"]["audio"]["speech"]["segments"] == 0  # nothing said
        assert files["mute.mp4"]["audio"] is None

        [meeting] = await _said(client, "budg", modalities=["speech"])  # a part of a word
        assert Path(meeting["path"]).name == "meeting.flac" and meeting["kind"] == "speech"
        assert abs(meeting["speech"]["start"] - 3.0) <= 1.5
        assert "<mark>budg</mark>et meeting" in meeting["speech"]["text"]

        barking = await _said(client, "dog barking", modalities=["speech"])
        found = {Path(r["path"]).name: r["speech"]["start"] for r in barking}
        assert set(found) == {"meeting.flac", "street.mp4"}
        assert abs(found["meeting.flac"] - 12.0) <= 1.5 and abs(found["street.mp4"] - 5.0) <= 1.5
        videos = await _said(client, "barking", modalities=["speech"], media_types=["video"])
        assert [Path(r["path"]).name for r in videos] == ["street.mp4"]

        # every kind of evidence together: the spoken line beside pictures and sound
        everything = await _said(client, "budget meeting", limit=10)
        best = next(r for r in everything if Path(r["path"]).name == "meeting.flac")
        assert best["speech"]["start"] == meeting["speech"]["start"]
        assert await _said(client, "xylophone", modalities=["speech"]) == []

        file_id = files["meeting.flac"]["file_id"]
        transcript = (await client.get(f"/api/v1/files/{file_id}/transcript")).json()
        assert transcript["segments"][0]["text"] == BUDGET
        vtt = await client.get(f"/api/v1/files/{file_id}/transcript", params={"format": "vtt"})
        assert vtt.headers["content-type"].startswith("text/vtt")
        assert vtt.text.startswith("WEBVTT\n\n00:00:03.") and BUDGET in vtt.text

        # a changed file's words replace its old ones
        spoken(media_dir / "meeting.flac", [(2.0, DOG)], 6.0)
        changed = await index_through_api(client, [media_dir / "meeting.flac"])
        assert changed["meeting.flac"]["file_id"] == file_id
        assert await _said(client, "budget", modalities=["speech"]) == []
        transcript = (await client.get(f"/api/v1/files/{file_id}/transcript")).json()
        [only] = transcript["segments"]
        assert "barking at the red car" in only["text"]


async def test_a_failing_transcriber_costs_the_file_its_words_only(
    speech_settings: Callable[..., Settings],
    tiny_engine: InfinityEngine,
    media_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(self: SphinxTranscriber, path: Path, **_: Any) -> Any:
        raise RuntimeError("the recognizer fell over")

    monkeypatch.setattr(SphinxTranscriber, "transcribe", broken)
    clip = spoken(media_dir / "talk.mp4", [(1.0, BUDGET)], 5.0, video=True)
    async with api_client(speech_settings(), tiny_engine) as client:
        files = await index_through_api(client, [clip])
        talk = files["talk.mp4"]
        assert talk["status"] == "indexed" and talk["scenes"]
        error = talk["audio"]["speech"]["error"]
        assert error["code"] == "speech_failed" and "fell over" in error["message"]
        transcript = (await client.get(f"/api/v1/files/{talk['file_id']}/transcript")).json()
        assert transcript["segments"] == [] and transcript["error"]["code"] == "speech_failed"
        seen = await _said(client, "a test picture", modalities=["visual"], limit=5)
        assert {Path(r["path"]).name for r in seen} == {"talk.mp4"}  # seen all the same


async def test_without_a_sound_model_audio_files_are_found_by_their_words(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine, media_dir: Path
) -> None:
    """The default CLAP is not on this machine: a recording is indexed by what is said in
    it all the same, and a recording in which nothing is said is indexed, wordless."""
    talk = spoken(media_dir / "talk.wav", [(1.0, BUDGET)], 5.0)
    hum = tone(media_dir / "hum.wav", 2.0)
    async with api_client(make_settings(speech=SPHINX), tiny_engine) as client:
        files = await index_through_api(client, [talk, hum])
        assert {n: f["status"] for n, f in files.items()} == {
            "talk.wav": "indexed",
            "hum.wav": "indexed",
        }
        assert files["hum.wav"]["audio"]["speech"]["segments"] == 0
        [hit] = await _said(client, "budget")
        assert Path(hit["path"]).name == "talk.wav" and hit["speech"]["start"] >= 0.5


async def test_the_server_answers_while_the_transcriber_loads(
    speech_settings: Callable[..., Settings],
    tiny_engine: InfinityEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A transcriber that takes long to come (Whisper downloading on a first start) does
    not keep the port shut: /health says "starting" until it is there, then names it."""
    import threading

    from support.app import wait_for

    from msearch import services as services_module
    from msearch.api import create_app

    arrived = threading.Event()
    load = services_module.create_transcriber

    def slowly(settings: SpeechSettings) -> Any:
        assert arrived.wait(60)
        return load(settings)

    monkeypatch.setattr(services_module, "create_transcriber", slowly)
    app = create_app(speech_settings(), engine=tiny_engine, background_start=True)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            waiting = await client.get("/health")
            assert waiting.status_code == 503 and waiting.json()["status"] == "starting"
            arrived.set()

            async def ready() -> dict[str, Any] | None:
                reply = await client.get("/health")
                return dict(reply.json()) if reply.status_code == 200 else None

            health = await wait_for(ready)
            assert health["speech"] == {"engine": "pocketsphinx", "transcribed_by": "pocketsphinx"}
            assert not health["engines_off"]
