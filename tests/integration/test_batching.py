"""The coalescer in front of the real engine: batches fill while the model is busy."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from PIL import Image
from support.media_factory import noise

from msearch.embedding.batching import CoalescingEngine
from msearch.embedding.infinity import InfinityEngine
from msearch.errors import EmbeddingError, EmbeddingTimeout


class Recording:
    """Forwards to the real engine and records the batch sizes it is given."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.batches: list[int] = []
        self.fail_next = False
        self.failure: EmbeddingError = EmbeddingError("engine restarted")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    async def embed_images(self, images: list[Image.Image]) -> list[list[float]]:
        self.batches.append(len(images))
        if self.fail_next:
            self.fail_next = False
            raise self.failure
        return list(await self.engine.embed_images(images))


async def test_concurrent_calls_are_merged_and_answers_stay_in_order(
    tiny_engine: InfinityEngine,
) -> None:
    recording = Recording(tiny_engine)
    coalescer = CoalescingEngine(recording, max_batch=8)  # type: ignore[arg-type]
    images = [noise(40, 40, seed=i) for i in range(20)]
    results = await asyncio.gather(*[coalescer.embed_images([im]) for im in images])
    direct = await tiny_engine.embed_images(images)
    assert np.allclose([r[0] for r in results], direct, atol=1e-5)
    assert recording.batches == [8, 8, 4]  # full ones at once, then the remainder


async def test_an_idle_engine_waits_a_moment_for_a_partial_batch_to_fill(
    tiny_engine: InfinityEngine,
) -> None:
    """A job's first image (or window of sound) waits ``gather_s`` for the next ones
    instead of going alone; a full batch does not wait, nor does a lone request forever."""
    recording = Recording(tiny_engine)
    patient = CoalescingEngine(recording, max_batch=8, gather_s=30.0)  # type: ignore[arg-type]
    images = [noise(40, 40, seed=i) for i in range(8)]
    first = asyncio.ensure_future(patient.embed_images(images[:1]))
    await asyncio.sleep(0.05)
    assert recording.batches == [] and not first.done()
    rest = asyncio.ensure_future(patient.embed_images(images[1:3]))
    await asyncio.sleep(0.05)
    assert recording.batches == []
    filled = await asyncio.wait_for(patient.embed_images(images[3:]), 20)  # 8: full
    assert recording.batches == [8] and len(filled) == 5
    assert len(await first) == 1 and len(await rest) == 2

    brief = CoalescingEngine(recording, max_batch=8, gather_s=0.05)  # type: ignore[arg-type]
    alone = await asyncio.wait_for(brief.embed_images(images[:1]), 20)
    assert np.allclose(alone, await tiny_engine.embed_images(images[:1]), atol=1e-5)
    assert recording.batches == [8, 1]


async def test_an_engine_error_reaches_every_caller_of_the_batch(
    tiny_engine: InfinityEngine,
) -> None:
    recording = Recording(tiny_engine)
    coalescer = CoalescingEngine(recording, max_batch=4)  # type: ignore[arg-type]
    recording.fail_next = True
    recording.failure = EmbeddingTimeout("the engine did not answer")  # not retried
    outcomes = await asyncio.gather(
        *[coalescer.embed_images([noise(20, 20, seed=i)]) for i in range(3)], return_exceptions=True
    )
    assert recording.batches == [3]
    assert all(isinstance(outcome, EmbeddingTimeout) for outcome in outcomes), outcomes
    # later calls work: the coalescer is not left stuck
    assert len(await coalescer.embed_images([noise(20, 20)])) == 1
    with pytest.raises(EmbeddingError):
        recording.fail_next = True
        await coalescer.embed_images([noise(20, 20)])


class Poisoned(Recording):
    """The real engine, except that a batch holding a marked image fails as a whole (what
    an image the model's processor rejects did to every file of its batch)."""

    async def embed_images(self, images: list[Image.Image]) -> list[list[float]]:
        self.batches.append(len(images))
        if any(image.info.get("poison") for image in images):
            raise EmbeddingError("too small for processing")
        return list(await self.engine.embed_images(images))


async def test_a_failing_image_fails_only_its_own_caller(tiny_engine: InfinityEngine) -> None:
    engine = Poisoned(tiny_engine)
    coalescer = CoalescingEngine(engine, max_batch=8)  # type: ignore[arg-type]
    images = [noise(30, 30, seed=i) for i in range(12)]
    images[5].info["poison"] = True
    outcomes = await asyncio.gather(
        *[coalescer.embed_images([im]) for im in images], return_exceptions=True
    )
    assert isinstance(outcomes[5], EmbeddingError)
    direct = await tiny_engine.embed_images([im for i, im in enumerate(images) if i != 5])
    good = [o[0] for i, o in enumerate(outcomes) if i != 5]  # type: ignore[index]
    assert np.allclose(good, direct, atol=1e-5)


@pytest.mark.parametrize("batch_size", [1, 7, 32])
async def test_tiny_and_broken_files_never_fail_their_batch_mates(
    batch_size: int, make_settings: Any, tiny_engine: InfinityEngine, media_dir: Any
) -> None:
    from msearch.services import build_services

    for side in (1, 2, 3):
        noise(side, side, seed=side).save(media_dir / f"tiny{side}.png")
    (media_dir / "truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)
    for i in range(40):
        noise(48, 40, seed=100 + i).save(media_dir / f"good{i:02}.png")
    settings = make_settings(performance={"max_concurrent_files": 16})
    engine = CoalescingEngine(tiny_engine, max_batch=batch_size)
    services = await build_services(settings, engine=engine)
    try:
        done = await services.orchestrator.batch_process_files(sorted(media_dir.iterdir()))
    finally:
        await services.aclose()
    status = {r.path.rsplit("/", 1)[1]: (r.status, r.error_code) for r in done}
    assert all(status[f"good{i:02}.png"] == ("indexed", None) for i in range(40)), status
    assert all(status[f"tiny{s}.png"][0] == "indexed" for s in (1, 2, 3)), status
    assert status["truncated.jpg"][0] == "failed"
