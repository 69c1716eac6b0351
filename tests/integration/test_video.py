"""Video on real FFmpeg: probing, scene cuts, keyframes, the API, and finding the moment."""

from __future__ import annotations

import random
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
from support.app import api_client, wait_for
from support.video_factory import audio_only, segments_video

from msearch.config import Settings, VideoSettings, load_settings
from msearch.demo import ShapeSpec, render, slideshow
from msearch.embedding.infinity import InfinityEngine
from msearch.errors import CorruptMedia, UnsupportedMedia
from msearch.media.video import FFmpegSceneDetector, probe

# frame multiples at 25 fps, irregular, each source unlike its neighbours
DURATIONS = [2.32, 1.72, 3.12, 1.52, 2.64, 1.24, 4.0, 1.96, 2.48]


def _cuts(path: Path, settings: VideoSettings | None = None) -> list[float]:
    info = probe(path)
    scenes = list(
        FFmpegSceneDetector(settings or VideoSettings(min_scene_seconds=0.5)).scenes(
            path, info, min_short=64
        )
    )
    return [k.scene.start for k in scenes[1:]]


def _precision_recall(
    found: list[float], truth: list[float], tol: float = 0.1
) -> tuple[float, float]:
    matched = sum(any(abs(f - t) <= tol for t in truth) for f in found)
    recalled = sum(any(abs(f - t) <= tol for f in found) for t in truth)
    return matched / max(1, len(found)), recalled / max(1, len(truth))


def test_probe_reads_duration_rate_size_codec_and_rotation(tmp_path: Path) -> None:
    path = tmp_path / "v.mp4"
    segments_video(path, [1.0, 1.0], size="320x240")
    info = probe(path)
    assert info.duration == pytest.approx(2.0, abs=0.05)
    assert (info.width, info.height, info.fps, info.codec) == (320, 240, 25.0, "h264")
    rotated = tmp_path / "r.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-y",
            "-loglevel",
            "error",
            "-i",
            str(path),
            "-c",
            "copy",
            "-metadata:s:v:0",
            "rotate=90",
            str(rotated),
        ],
        check=True,
    )
    turned = probe(rotated)
    assert turned.rotation in (90, 270) and (turned.width, turned.height) == (240, 320)


def test_cuts_are_found_within_a_tenth_of_a_second(tmp_path: Path) -> None:
    for i, order in enumerate([DURATIONS, DURATIONS[::-1][:6]]):
        path = tmp_path / f"cuts{i}.mp4"
        truth = segments_video(path, order)
        found = _cuts(path)
        precision, recall = _precision_recall(found, truth)
        assert precision >= 0.95 and recall >= 0.95, (found, truth)


def test_a_video_without_cuts_is_one_scene_and_long_scenes_are_split(tmp_path: Path) -> None:
    path = tmp_path / "calm.mp4"
    segments_video(path, [6.0], sources=["testsrc"])
    info = probe(path)
    [only] = list(FFmpegSceneDetector(VideoSettings()).scenes(path, info, min_short=64))
    assert (only.scene.start, only.scene.end) == (0.0, pytest.approx(6.0, abs=0.05))
    assert 2.0 <= only.scene.keyframe <= 4.0  # mid-scene
    split = list(
        FFmpegSceneDetector(VideoSettings(max_scene_seconds=2.0)).scenes(path, info, min_short=64)
    )
    assert [k.scene.start for k in split] == [0.0, 2.0, 4.0]
    assert all(k.image.height == 64 for k in split)


def test_short_scenes_merge_into_a_neighbour(tmp_path: Path) -> None:
    path = tmp_path / "flash.mp4"
    truth = segments_video(path, [2.0, 0.4, 2.0])
    scenes = list(
        FFmpegSceneDetector(VideoSettings(min_scene_seconds=1.0)).scenes(
            path, probe(path), min_short=64
        )
    )
    assert len(scenes) == 2 and truth == [2.0, 2.4]
    assert scenes[-1].scene.end == pytest.approx(4.4, abs=0.05)


def test_bad_videos_fail_clearly(tmp_path: Path) -> None:
    good = tmp_path / "good.mp4"
    segments_video(good, [1.0, 1.0])
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    with pytest.raises(CorruptMedia):
        info = probe(truncated)
        list(FFmpegSceneDetector(VideoSettings()).scenes(truncated, info, min_short=64))
    with pytest.raises(UnsupportedMedia, match="no video stream"):
        probe(audio_only(tmp_path / "audio.mp4"))


async def _index(client: httpx.AsyncClient, *paths: Path) -> dict[str, str]:
    job = (
        await client.post("/api/v1/files/batch-process", json={"paths": [str(p) for p in paths]})
    ).json()

    async def finished() -> bool:
        return bool((await client.get(job["status_url"])).json()["status"] == "finished")

    await wait_for(finished, limit_s=120)
    return {Path(f["path"]).name: f["file_id"] for f in job["files"]}


async def test_videos_through_the_api(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine, media_dir: Path
) -> None:
    video = media_dir / "clip.mp4"
    truth = segments_video(video, DURATIONS[:4])
    (media_dir / "empty.mp4").write_bytes(b"")
    (media_dir / "random.mp4").write_bytes(random.Random(1).randbytes(4000))
    audio_only(media_dir / "sound.mp4")
    truncated = media_dir / "cut.mp4"
    truncated.write_bytes(video.read_bytes()[: video.stat().st_size // 4])
    settings = make_settings(video={"min_scene_seconds": 0.5})
    async with api_client(settings, tiny_engine) as client:
        ids = await _index(client, media_dir)
        meta = (await client.get(f"/api/v1/files/{ids['clip.mp4']}")).json()
        assert meta["status"] == "indexed" and meta["media_type"] == "video"
        assert meta["duration"] == pytest.approx(sum(DURATIONS[:4]), abs=0.05)
        assert [s["start"] for s in meta["scenes"][1:]] == pytest.approx(truth, abs=0.1)
        assert all(s["start"] < s["keyframe"] < s["end"] for s in meta["scenes"])
        status = (await client.get(f"/api/v1/files/process-status/{ids['clip.mp4']}")).json()
        assert len(status["scenes"]) == len(truth) + 1
        assert (await client.get("/health")).json()["counts"]["vectors"] == len(truth) + 1
        for scene in range(len(truth) + 1):
            thumb = await client.get(
                f"/api/v1/files/{ids['clip.mp4']}/thumbnail", params={"scene": scene}
            )
            assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        missing = await client.get(
            f"/api/v1/files/{ids['clip.mp4']}/thumbnail", params={"scene": 99}
        )
        assert missing.status_code == 404
        ranged = await client.get(
            f"/api/v1/files/{ids['clip.mp4']}/content", headers={"Range": "bytes=1000-1999"}
        )
        assert ranged.status_code == 206 and ranged.headers["content-type"] == "video/mp4"
        codes = {}
        sound = (await client.get(f"/api/v1/files/{ids['sound.mp4']}")).json()
        # sound alone is an audio file: with the defaults here no sound model and no speech
        # model can load, so nothing can index it and it says so
        assert (sound["status"], sound["media_type"]) == ("failed", "audio")
        assert sound["error"]["code"] == "sound_model_unavailable"
        for name in ("empty.mp4", "random.mp4", "cut.mp4"):
            codes[name] = (await client.get(f"/api/v1/files/{ids[name]}")).json()["error"]["code"]
        assert codes == {
            "empty.mp4": "empty_file",
            "random.mp4": "unsupported_media",
            "cut.mp4": "corrupt_media",
        }
        hits = (
            await client.post(
                "/api/v1/search/text", json={"query": "x", "media_types": ["video"], "limit": 3}
            )
        ).json()["results"]
        assert hits and all(h["scene"] is not None for h in hits)
        every = (
            await client.post(
                "/api/v1/search/text", json={"query": "x", "media_types": ["video"], "limit": 50}
            )
        ).json()["results"]
        grouped = (
            await client.post(
                "/api/v1/search/text",
                json={"query": "x", "media_types": ["video"], "group_by_file": True},
            )
        ).json()["results"]
        assert len(grouped) == 1 and len(every) == len(truth) + 1
        # the other scenes that match, best first; a negative similarity is no match
        assert [m["score"] for m in grouped[0]["more_scenes"]] == [
            h["score"] for h in every[1:] if h["score"] > 0
        ]

        # re-processing a changed video replaces all its scenes and vectors
        segments_video(video, [3.0, 3.0])
        await _index(client, video)
        meta = (await client.get(f"/api/v1/files/{ids['clip.mp4']}")).json()
        assert len(meta["scenes"]) == 2
        assert (await client.get("/health")).json()["counts"]["vectors"] == 2


async def test_a_shape_shown_in_one_scene_is_found_at_that_moment(
    tmp_path: Path, media_dir: Path
) -> None:
    rng = random.Random(5)
    shots = [
        ("red", "star", 2.0),
        ("blue", "square", 2.4),
        ("green", "circle", 2.8),
        ("yellow", "triangle", 2.0),
    ]
    # a cut changes the whole picture, as in footage: each shot has its own background
    backgrounds = ["grey", "beige", "dark grey", "striped"]
    frames = [
        (render(ShapeSpec(c, s, "large", "center", b), 256, rng), d)
        for (c, s, d), b in zip(shots, backgrounds, strict=True)
    ]
    video = media_dir / "shapes.mp4"
    cuts = slideshow(video, frames)
    for i in range(6):  # distractor stills
        render(ShapeSpec("purple", "cross", "medium", "center", "beige"), 256, rng).save(
            media_dir / f"still{i}.png"
        )
    settings = load_settings(
        None,
        data_dir=tmp_path / "data",
        embedding={"model": "demo", "device": "cpu"},
        api={"allowed_roots": [media_dir]},
    )
    async with api_client(settings, None) as client:
        await _index(client, media_dir)
        for (colour, shape, _), start, end in zip(
            shots, [0.0, *cuts], [*cuts, sum(d for *_, d in shots)], strict=True
        ):
            body = (
                await client.post(
                    "/api/v1/search/text", json={"query": f"a {colour} {shape}", "limit": 1}
                )
            ).json()
            [hit] = body["results"]
            assert Path(hit["path"]).name == "shapes.mp4", (colour, shape)
            assert hit["scene"]["start"] == pytest.approx(start, abs=0.1)
            assert hit["scene"]["end"] == pytest.approx(end, abs=0.1)


def test_memory_stays_bounded_for_any_length() -> None:
    """An hour without cuts at 2 sampled frames/s: the assembler never holds more than one
    scene's frames (max_scene_seconds plus the cut margin)."""
    from PIL import Image

    from msearch.media.video import _SceneAssembler

    settings = VideoSettings(max_scene_seconds=30)
    assembler = _SceneAssembler(settings, duration=3600.0)
    frame = Image.new("RGB", (8, 8))
    peak, scenes = 0, 0
    for i in range(7200):
        scenes += len(list(assembler.add_frame(i / 2, frame)))
        peak = max(peak, len(assembler._frames))
    scenes += len(list(assembler.finish()))
    assert peak <= (30 + 2) * 2 + 1
    assert scenes == 120  # split every 30 s


async def test_progress_is_reported_while_a_video_is_processed(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine, media_dir: Path
) -> None:
    from msearch.orchestrator import ProcessingOrchestrator
    from msearch.orchestrator.progress import Step
    from msearch.services import build_services

    class Recording:
        def __init__(self) -> None:
            self.fractions: list[float] = []

        def started(self, file_id: str) -> None: ...

        def finished(self, file_id: str) -> None: ...

        async def step(self, file_id: str, step: Step) -> None: ...

        async def advance(self, file_id: str, fraction: float) -> None:
            self.fractions.append(fraction)

    video = media_dir / "long.mp4"
    segments_video(video, [6.0, 6.0, 6.0])
    settings = make_settings()
    services = await build_services(settings, engine=tiny_engine)
    recording = Recording()
    orchestrator = ProcessingOrchestrator(
        services.adapter,
        tiny_engine,
        settings.performance,
        video=settings.video,
        progress=recording,
    )
    await orchestrator.start()
    try:
        record = await orchestrator.process_file(video)
        assert record.status == "indexed" and len(record.scenes) == 3
        assert len(recording.fractions) >= 3
        assert recording.fractions == sorted(recording.fractions)
        # the frames are decoded as the embed stage pulls them: between embed and persist
        assert recording.fractions[0] >= 0.5 and recording.fractions[-1] <= 0.9
    finally:
        await services.aclose()


async def test_a_video_streams_through_the_shared_embed_stage_in_batches(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine, media_dir: Path
) -> None:
    """Videos and images share the embed and persist stages; a video's keyframes reach
    the model a batch at a time while FFmpeg is still decoding, never all at once."""
    from PIL import Image

    from msearch.media.detect import MediaType
    from msearch.orchestrator import ProcessingOrchestrator
    from msearch.services import build_services

    settings = make_settings()
    services = await build_services(settings, engine=tiny_engine)
    thumbs = services.adapter.thumbnail_path("x", 0).parent.parent
    calls: list[tuple[int, int]] = []  # (batch size, scene thumbnails written so far)

    class Counting:
        model_id = tiny_engine.model_id
        input_size = tiny_engine.input_size

        async def embed_images(self, images: list[Image.Image]) -> list[list[float]]:
            calls.append((len(images), len(list(thumbs.rglob("*.jpg")))))
            return await tiny_engine.embed_images(images)

    video = media_dir / "eight.mp4"
    segments_video(video, [2.0] * 8)
    orchestrator = ProcessingOrchestrator(
        services.adapter, Counting(), settings.performance, video=settings.video, batch_size=1
    )
    pipelines = orchestrator._pipelines
    shared = [type(stage) for stage in pipelines[MediaType.IMAGE][1:]]
    # the same stages, and a video's sound besides (the shared stages of audio files)
    video_stages = [type(stage) for stage in pipelines[MediaType.VIDEO][1:]]
    assert [s for s in video_stages if s in shared] == shared
    heard = [type(stage) for stage in pipelines[MediaType.AUDIO][1:]]
    assert [s for s in video_stages if s not in shared] == heard[:-1]
    await orchestrator.start()
    try:
        record = await orchestrator.process_file(video)
        assert record.status == "indexed" and len(record.scenes) == 8
        assert [size for size, _ in calls] == [1] * 8
        # one frame embedding, two queued, one waiting to be queued: no more decoded yet
        assert calls[0][1] <= 4 and len(list(thumbs.rglob("*.jpg"))) == 8
    finally:
        await orchestrator.stop()
        await services.aclose()


async def test_scenes_less_similar_than_unrelated_are_no_match(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine, media_dir: Path
) -> None:
    """Queried with (scene 0 - scene 1), scene 0 scores above 0 and scene 1 below: the
    grouped result names scene 0 and does not offer scene 1 as a matching scene."""
    from msearch.embedding.registry import EngineKind
    from msearch.search import SearchOptions
    from msearch.services import build_services
    from msearch.store.vectors import point_id

    video = media_dir / "three.mp4"
    segments_video(video, [2.0, 2.0, 2.0])
    services = await build_services(make_settings(), engine=tiny_engine)
    try:
        [record] = await services.orchestrator.batch_process_files([video])
        adapter = services.adapter
        ids = [point_id(record.id, i) for i in range(3)]
        found = await adapter._vectors.retrieve_vectors(adapter.collection, ids)
        first, second = np.array(found[ids[0]]), np.array(found[ids[1]])
        query = (first - second) / np.linalg.norm(first - second)
        [hit] = (
            await services.searcher._ask(
                {EngineKind.VISUAL: query.tolist()},
                SearchOptions(group_by_file=True, media_types=("video",)),
                {EngineKind.VISUAL: adapter.serving_collection(EngineKind.VISUAL)},
            )
        ).hits
    finally:
        await services.aclose()
    assert hit.scene is not None and hit.scene.index == 0
    assert all(m.score > 0 for m in hit.more)
    assert 1 not in [m.scene.index for m in hit.more if m.scene]
