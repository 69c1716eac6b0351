"""Sound through the whole product: audio files of every common format and the soundtrack of
videos indexed window by window with a real (tiny) CLAP, found by text through the API with
where they are heard; bad sound fails alone, with a code, and the engine keeps answering."""

from __future__ import annotations

import asyncio
import io
import resource
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile
from support.app import api_client, index_through_api
from support.audio_factory import tone, video_with_sound

from msearch.config import EmbeddingSettings, Settings
from msearch.embedding.batching import CoalescingEngine
from msearch.embedding.infinity import InfinityEngine
from msearch.embedding.registry import EngineKind, EngineRegistry
from msearch.media.audio import stream_windows, wav_bytes
from msearch.media.detect import DetectedType, MediaType, detect_file, settle_container
from msearch.services import build_services


@pytest.fixture
def audio_settings(
    make_settings: Callable[..., Settings], tiny_clap_dir: Path
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        audio = {"model": str(tiny_clap_dir), "window_seconds": 4, "hop_seconds": 2}
        return make_settings(audio={**audio, **overrides.pop("audio", {})}, **overrides)

    return make


async def _answers(client: httpx.AsyncClient) -> None:
    reply = await client.post(
        "/api/v1/search/text", json={"query": "a high beep", "modalities": ["audio"]}
    )
    assert reply.status_code == 200, reply.text


def test_audio_formats_are_detected_by_content(tmp_path: Path) -> None:
    made = {
        "a.wav": tone(tmp_path / "a.wav"),
        "a.flac": tone(tmp_path / "a.flac"),
        "a.mp3": tone(tmp_path / "a.mp3", rate=44_100),
        "a.ogg": tone(tmp_path / "a.ogg", codec=("-c:a", "libvorbis")),
        "a.opus": tone(tmp_path / "a.opus", codec=("-c:a", "libopus")),
        "a.m4a": tone(tmp_path / "a.m4a", codec=("-c:a", "aac")),
        "a.aac": tone(tmp_path / "a.aac", codec=("-c:a", "aac")),
    }
    for name, path in made.items():
        detected = detect_file(path)
        assert detected is not None and detected.media_type == MediaType.AUDIO, name
    disguised = tmp_path / "holiday.jpg"
    shutil.copy(made["a.flac"], disguised)
    found = detect_file(disguised)
    assert found is not None and found.mime == "audio/flac"


def test_sound_alone_in_a_video_container_is_audio(tmp_path: Path) -> None:
    """An .m4a written with the generic "isom" brand, a song saved as WebM or Matroska:
    the header says video, the streams say sound."""
    sound_only = {
        "voice.mp4": ("audio/mp4", ("-c:a", "aac")),
        "song.webm": ("audio/webm", ("-c:a", "libopus")),
        "tape.mka": ("audio/x-matroska", ("-c:a", "flac")),
    }
    for name, (mime, codec) in sound_only.items():
        path = tone(tmp_path / name, codec=codec)
        header = detect_file(path)
        assert header is not None and header.media_type == MediaType.VIDEO, name
        assert settle_container(header, path) == DetectedType(MediaType.AUDIO, mime), name
    for film in (
        video_with_sound(tmp_path / "film.mp4"),
        video_with_sound(tmp_path / "mute.mp4", sound=None),
    ):
        header = detect_file(film)
        assert header is not None and settle_container(header, film) == header
    broken = tmp_path / "broken.mp4"
    broken.write_bytes((tmp_path / "film.mp4").read_bytes()[:64])
    header = detect_file(broken)
    assert header is not None and settle_container(header, broken) == header  # the decoder says why


def test_windows_cover_every_second_and_short_sound_is_repeated(tmp_path: Path) -> None:
    long = tone(tmp_path / "long.wav", 23.0, rate=44_100, channels=2)
    spans = [(w.start, w.end) for w in stream_windows(long, rate=48_000, window_s=10, hop_s=5)]
    assert spans == [(0, 10), (5, 15), (10, 20), (13, 23)]
    short = tone(tmp_path / "short.flac", 3.0, rate=8_000)
    [window] = stream_windows(short, rate=48_000, window_s=10, hop_s=5)
    assert (window.start, window.end, window.samples.shape) == (0.0, 3.0, (480_000,))
    third = window.samples[: 3 * 48_000]
    assert abs(window.samples[3 * 48_000 : 6 * 48_000] - third).max() < 1e-6  # repeated
    assert not window.silent


@pytest.mark.parametrize("shape", [(48_000,), (44_100, 2)])
def test_a_window_handed_to_the_model_is_a_wav_libsndfile_reads_back(
    shape: tuple[int, ...],
) -> None:
    samples = np.random.default_rng(7).uniform(-1, 1, shape).astype(np.float32)
    clip = wav_bytes(samples, 48_000)
    read, rate = soundfile.read(io.BytesIO(clip), dtype="float32")
    assert rate == 48_000 and np.array_equal(read, samples)
    assert soundfile.info(io.BytesIO(clip)).subtype == "FLOAT"


class SlowRecording:
    """The real sound engine, a fifth of a second slower per call (a busy model), noting
    the size of every batch it is given."""

    def __init__(self, engine: InfinityEngine) -> None:
        self.engine = engine
        self.batches: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    async def embed_audio(self, clips: list[bytes]) -> list[list[float]]:
        self.batches.append(len(clips))
        await asyncio.sleep(0.2)
        return await self.engine.embed_audio(clips)


async def test_windows_of_several_files_fill_the_models_batches(
    audio_settings: Callable[..., Settings],
    tiny_engine: InfinityEngine,
    tiny_clap_dir: Path,
    media_dir: Path,
) -> None:
    """While the model is busy the windows of every file indexing fill its next batches
    (each file handing over batches of its own left a partial one per file, and the
    model idle until a file had decoded 45 s)."""
    paths = [tone(media_dir / f"tone{i}.flac", 21.0, frequency=300 + 200 * i) for i in range(3)]
    clap = InfinityEngine(EmbeddingSettings(model=str(tiny_clap_dir), device="cpu", timeout_s=60))
    await clap.start()
    recording = SlowRecording(clap)
    engines = EngineRegistry(
        {
            EngineKind.VISUAL: tiny_engine,
            EngineKind.AUDIO: CoalescingEngine(recording, max_batch=4),  # type: ignore[arg-type]
        }
    )
    settings = audio_settings(audio={"batch_size": 4}, speech={"enabled": False})
    services = await build_services(settings, engines=engines)
    try:
        done = await services.orchestrator.batch_process_files(paths)
    finally:
        await services.aclose()
        await clap.stop()
    assert all(r.status == "indexed" for r in done), [r.error for r in done]
    windows = sum(len(r.sound_windows) for r in done)
    assert windows == 30  # 0-4, 2-6, ... 16-20, and 17-21 for each file
    assert sum(recording.batches) == windows
    assert max(recording.batches) == 4
    # full batches but for the first and the end's remainders
    assert sum(1 for size in recording.batches if size < 4) <= 3, recording.batches


async def test_sound_is_indexed_and_found_where_it_is_heard(
    audio_settings: Callable[..., Settings], tiny_engine: InfinityEngine, media_dir: Path
) -> None:
    paths = [
        tone(media_dir / "beep.wav", 9.0, frequency=2000, rate=44_100, channels=2),
        tone(media_dir / "hum.flac", 3.0, frequency=80, rate=8_000),
        tone(media_dir / "six.wav", 5.0, channels=6),
        tone(media_dir / "song.mp3", 5.0, rate=44_100, codec=("-metadata", "title=Ode")),
        tone(media_dir / "voice.opus", 5.0, codec=("-c:a", "libopus")),
        tone(media_dir / "memo.m4a", 5.0, codec=("-c:a", "aac")),
        tone(media_dir / "dictation.mp4", 5.0, codec=("-c:a", "aac")),  # brand "isom"
        video_with_sound(media_dir / "talk.mp4", 6.0),
        video_with_sound(media_dir / "mute.mp4", 3.0, sound=None),
        video_with_sound(media_dir / "quiet.mp4", 3.0, sound="silence"),
    ]
    async with api_client(audio_settings(), tiny_engine) as client:
        health = (await client.get("/health")).json()
        assert [e["kind"] for e in health["engines"]] == ["visual", "audio"]
        files = await index_through_api(client, paths)
        assert {n: f["status"] for n, f in files.items()} == {p.name: "indexed" for p in paths}
        beep = files["beep.wav"]
        assert beep["media_type"] == "audio" and beep["duration"] == pytest.approx(9.0, abs=0.1)
        assert beep["audio"]["sample_rate"] == 44_100 and beep["audio"]["channels"] == 2
        assert beep["audio"]["windows"] == [[0, 4], [2, 6], [4, 8], [5, 9]]
        assert beep["thumbnail_url"] is None
        assert files["song.mp3"]["audio"]["tags"]["title"] == "Ode"
        assert files["six.wav"]["audio"]["channels"] == 6
        assert files["hum.flac"]["audio"]["windows"] == [[0, 3]]
        assert files["dictation.mp4"]["media_type"] == "audio"
        talk = files["talk.mp4"]
        assert talk["media_type"] == "video" and len(talk["audio"]["windows"]) == 2
        assert files["mute.mp4"]["audio"] is None
        assert files["quiet.mp4"]["audio"]["windows"] == []  # nothing heard, nothing kept

        heard = (
            await client.post(
                "/api/v1/search/text",
                json={"query": "a high beep", "modalities": ["audio"], "limit": 50},
            )
        ).json()["results"]
        assert {r["kind"] for r in heard} == {"audio"}
        names = {Path(r["path"]).name for r in heard}
        assert names == {p.name for p in paths} - {"mute.mp4", "quiet.mp4"}
        window = next(r for r in heard if Path(r["path"]).name == "beep.wav")["audio"]
        assert [window["start"], window["end"]] in beep["audio"]["windows"]

        only_audio = (
            await client.post(
                "/api/v1/search/text",
                json={"query": "a beep", "media_types": ["audio"], "limit": 50},
            )
        ).json()["results"]
        assert only_audio and {r["media_type"] for r in only_audio} == {"audio"}

        # both engines, grouped per file: the video's scenes and its sound in one result
        grouped = (
            await client.post(
                "/api/v1/search/text",
                json={"query": "a beep", "group_by_file": True, "limit": 50},
            )
        ).json()["results"]
        video = next(r for r in grouped if Path(r["path"]).name == "talk.mp4")
        assert ("more_audio" in video or "audio" in video) and (
            video["scene"] is not None or video.get("more_scenes")
        )
        assert len({r["file_id"] for r in grouped}) == len(grouped)

        # by example: an uploaded clip, and a moment of an indexed file
        clip = tone(
            media_dir.parent / "query.ogg", 2.0, frequency=2000, codec=("-c:a", "libvorbis")
        )
        with clip.open("rb") as fh:
            reply = await client.post(
                "/api/v1/search/audio", files={"file": ("query.ogg", fh)}, data={"limit": "50"}
            )
        assert reply.status_code == 200, reply.text
        by_clip = reply.json()["results"]
        assert {r["kind"] for r in by_clip} == {"audio"} and len(by_clip) == len(heard)
        moment = (
            await client.post(
                "/api/v1/search/audio",
                json={"file_id": beep["file_id"], "start": 4.5, "limit": 50},
            )
        ).json()["results"]
        same_file = [
            [r["audio"]["start"], r["audio"]["end"]]
            for r in moment
            if r["file_id"] == beep["file_id"]
        ]
        assert [4, 8] not in same_file and len(same_file) == 3
        durations = [r["audio"]["duration"] for r in moment if r["file_id"] == beep["file_id"]]
        assert all(abs(d - 9.0) < 0.1 for d in durations)
        not_sound = await client.post(
            "/api/v1/search/audio", files={"file": ("x.ogg", b"not sound at all")}
        )
        assert not_sound.status_code == 400, not_sound.text

        status = (await client.get("/api/v1/system/status")).json()
        audio = next(e for e in status["engines"] if e["kind"] == "audio")
        assert audio["vectors"] == sum(
            len(f["audio"]["windows"]) for f in files.values() if f["audio"]
        )


async def test_bad_sound_fails_alone_with_a_code(
    audio_settings: Callable[..., Settings], tiny_engine: InfinityEngine, media_dir: Path
) -> None:
    good = tone(media_dir / "good.wav", 3.0)
    truncated = media_dir / "truncated.wav"
    truncated.write_bytes(good.read_bytes()[:60])  # a header and nothing else
    garbage = media_dir / "garbage.mp3"
    garbage.write_bytes(b"ID3" + bytes(range(256)) * 40)
    empty = media_dir / "empty.flac"
    empty.write_bytes(b"")
    broken_track = video_with_sound(media_dir / "broken.mp4", 3.0)
    data = bytearray(broken_track.read_bytes())
    # the AAC frames are interleaved near the end of a short file: garble the tail
    data[-4000:-200] = bytes(len(data[-4000:-200]))
    broken_track.write_bytes(bytes(data))
    async with api_client(audio_settings(), tiny_engine) as client:
        files = await index_through_api(client, [good, truncated, garbage, empty, broken_track])
        assert files["good.wav"]["status"] == "indexed"
        for name in ("truncated.wav", "garbage.mp3"):
            assert files[name]["status"] == "failed", files[name]
            assert files[name]["error"]["code"] == "corrupt_media", files[name]
        assert files["empty.flac"]["status"] == "failed"
        assert files["empty.flac"]["error"]["code"] == "empty_file"
        assert files["broken.mp4"]["status"] in ("indexed", "failed")
        if files["broken.mp4"]["status"] == "failed":
            assert files["broken.mp4"]["error"]["code"]
        await _answers(client)


async def test_without_a_sound_model_pictures_work_and_audio_files_say_why(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine, media_dir: Path
) -> None:
    """The default sound model is not on this machine (no network): msearch runs without
    it, says so, and (with speech off: nothing else indexes them) audio files fail with a
    code until it is there."""
    sound = tone(media_dir / "sound.wav", 2.0)
    clip = video_with_sound(media_dir / "clip.mp4", 2.0)
    async with api_client(make_settings(speech={"enabled": False}), tiny_engine) as client:
        health = (await client.get("/health")).json()
        assert health["status"] == "ok"
        assert [e["kind"] for e in health["engines"]] == ["visual"]
        [off] = health["engines_off"]
        assert off["kind"] == "audio" and "laion/clap-htsat-unfused" in off["reason"]
        assert "MSEARCH_AUDIO__MODEL (audio.model)" in off["reason"]  # what to change
        files = await index_through_api(client, [sound, clip])
        assert files["clip.mp4"]["status"] == "indexed"
        assert files["sound.wav"]["status"] == "failed"
        assert files["sound.wav"]["error"]["code"] == "sound_model_unavailable"
        reply = await client.post(
            "/api/v1/search/text", json={"query": "a beep", "modalities": ["audio"]}
        )
        assert reply.status_code == 400 and "audio search is off" in reply.text
        assert reply.json()["error"]["code"] == "engine_off"


@pytest.mark.slow
async def test_an_hour_of_sound_in_bounded_memory(
    audio_settings: Callable[..., Settings], tiny_engine: InfinityEngine, media_dir: Path
) -> None:
    """An hour decoded to 48 kHz floats is 690 MB; streamed, a batch of windows is all that
    is held: after five minutes of sound (full batches: the buffers of the model and of its
    feature extractor at their size), an hour adds little."""
    opus = ("-c:a", "libopus", "-b:a", "16k")
    warm_up = tone(media_dir / "five.opus", 300.0, rate=16_000, codec=opus)
    hour = tone(media_dir / "hour.opus", 3600.0, rate=16_000, codec=opus)
    # the sound model's memory is measured here (speech: tests/integration/test_speech.py)
    settings = audio_settings(
        audio={"window_seconds": 10, "hop_seconds": 10}, speech={"enabled": False}
    )
    async with api_client(settings, tiny_engine) as client:
        await index_through_api(client, [warm_up])
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
        files = await index_through_api(client, [hour])
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        record = files["hour.opus"]
        assert record["status"] == "indexed" and len(record["audio"]["windows"]) == 360
        # held whole, the hour would add 690 MB; streamed it added 40-120 MB of the
        # process's peak (the allocator's and the model's buffers vary between runs)
        assert grown_mb < 200, grown_mb
        await _answers(client)
