"""The coalescer in front of the real engine: batches fill while the model is busy."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from PIL import Image

from media_factory import noise
from msearch.embedding.batching import CoalescingEngine
from msearch.embedding.infinity import InfinityEngine
from msearch.errors import EmbeddingError


class Recording:
    """Forwards to the real engine and records the batch sizes it is given."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.batches: list[int] = []
        self.fail_next = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    async def embed_images(self, images: list[Image.Image]) -> list[list[float]]:
        self.batches.append(len(images))
        if self.fail_next:
            self.fail_next = False
            raise EmbeddingError("engine restarted")
        return list(await self.engine.embed_images(images))


async def test_concurrent_calls_are_merged_and_answers_stay_in_order(
        tiny_engine: InfinityEngine) -> None:
    recording = Recording(tiny_engine)
    coalescer = CoalescingEngine(recording, max_batch=8)  # type: ignore[arg-type]
    images = [noise(40, 40, seed=i) for i in range(20)]
    results = await asyncio.gather(*[coalescer.embed_images([im]) for im in images])
    direct = await tiny_engine.embed_images(images)
    assert np.allclose([r[0] for r in results], direct, atol=1e-5)
    assert sum(recording.batches) == 20 and max(recording.batches) == 8
    assert len(recording.batches) <= 4  # 1 at once (idle engine), then full batches


async def test_an_engine_error_reaches_every_caller_of_the_batch(
        tiny_engine: InfinityEngine) -> None:
    recording = Recording(tiny_engine)
    coalescer = CoalescingEngine(recording, max_batch=4)  # type: ignore[arg-type]
    recording.fail_next = True
    outcomes = await asyncio.gather(*[coalescer.embed_images([noise(20, 20, seed=i)])
                                      for i in range(3)], return_exceptions=True)
    assert isinstance(outcomes[0], EmbeddingError)
    # later calls work: the coalescer is not left stuck
    assert len(await coalescer.embed_images([noise(20, 20)])) == 1
    with pytest.raises(EmbeddingError):
        recording.fail_next = True
        await coalescer.embed_images([noise(20, 20)])
