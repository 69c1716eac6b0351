"""Indexing never takes the capacity searches need: while a dozen videos decode, searches
and /health answer at once instead of queueing behind them."""

from __future__ import annotations

import asyncio
import io
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from support.app import api_client, wait_for
from support.media_factory import noise
from support.video_factory import segments_video

from msearch.config import Settings
from msearch.embedding.infinity import InfinityEngine

pytestmark = pytest.mark.slow
VIDEOS = 12


async def test_searches_answer_while_videos_index(
    make_settings: Callable[..., Settings],
    tiny_engine: InfinityEngine,
    media_dir: Path,
    tmp_path: Path,
) -> None:
    for i in range(8):
        noise(48, 48, seed=i).save(media_dir / f"{i}.png")
    master = tmp_path / "master.mp4"
    await asyncio.to_thread(segments_video, master, [10, 10], size="640x360", grain=12)
    videos = media_dir / "videos"
    videos.mkdir()
    for i in range(VIDEOS):
        shutil.copy(master, videos / f"{i:02}.mp4")
    settings = make_settings(performance={"max_concurrent_files": VIDEOS + 4})
    async with api_client(settings, tiny_engine) as client:
        images = await client.post(
            "/api/v1/files/batch-process",
            json={"paths": [str(media_dir / f"{i}.png") for i in range(8)]},
        )

        async def finished(job: dict[str, str]) -> bool:
            return bool((await client.get(job["status_url"])).json()["status"] == "finished")

        await wait_for(lambda: finished(images.json()))
        job = (
            await client.post("/api/v1/files/batch-process", json={"paths": [str(videos)]})
        ).json()

        async def decoding() -> bool:
            """Frames are flowing from FFmpeg for at least two videos."""
            listing = (await client.get("/api/v1/files", params={"status": "processing"})).json()
            return sum(1 for f in listing["files"] if f["progress"] > 0.22) >= 2

        await wait_for(decoding)
        answers = await asyncio.gather(
            *(client.post("/api/v1/search/text", json={"query": f"noise {i}"}) for i in range(20)),
            *(client.get("/health") for _ in range(5)),
        )
        assert all(a.status_code == 200 for a in answers)
        assert all(len(a.json()["results"]) > 0 for a in answers[:20])
        indexed = (
            await client.get("/api/v1/files", params={"status": "indexed", "media_type": "video"})
        ).json()["total"]
        # the searches did not wait behind the videos: most of them are still to be done
        # (two decode at a time, so one may end while the searches are answered on a
        # loaded machine; a search queued behind them would see them all done)
        assert indexed < VIDEOS // 2, f"{indexed} videos were indexed before the searches answered"
        await wait_for(lambda: finished(job), limit_s=300)
        done = (
            await client.get("/api/v1/files", params={"status": "indexed", "media_type": "video"})
        ).json()["total"]
        assert done == VIDEOS


def _png(side: int) -> bytes:
    buffer = io.BytesIO()
    noise(side, side, seed=side).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("model_sees_raw_upload", [False, True])
async def test_tiny_image_searches_never_touch_indexing(
    model_sees_raw_upload: bool,
    make_settings: Callable[..., Settings],
    tiny_engine: InfinityEngine,
    media_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """20 searches by 1x1/2x2 images while 100 files index. msearch scales tiny images up,
    so they answer 200; with that step removed the model refuses them, and they answer
    422 (the image's fault), never 503, and no file being indexed fails with them."""
    if model_sees_raw_upload:
        monkeypatch.setattr("msearch.embedding.infinity.fit_for_model", lambda image, side: image)
    for i in range(100):
        noise(48, 40, seed=1000 + i).save(media_dir / f"{i:03}.png")
    async with api_client(make_settings(), tiny_engine) as client:
        job = (
            await client.post("/api/v1/files/batch-process", json={"paths": [str(media_dir)]})
        ).json()
        answers = await asyncio.gather(
            *(
                client.post(
                    "/api/v1/search/image", files={"file": ("q.png", _png(1 + i % 2), "image/png")}
                )
                for i in range(20)
            )
        )
        expected = 422 if model_sees_raw_upload else 200
        assert [a.status_code for a in answers] == [expected] * 20, answers[0].text
        if model_sees_raw_upload:
            assert answers[0].json()["error"]["code"] == "image_not_embeddable"

        async def finished() -> bool:
            return bool((await client.get(job["status_url"])).json()["status"] == "finished")

        await wait_for(finished, limit_s=180)
        indexed = (await client.get("/api/v1/files", params={"status": "indexed"})).json()
        assert indexed["total"] == 100
