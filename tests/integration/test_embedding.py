"""The Infinity engine against a direct transformers computation of the same checkpoint."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from support.media_factory import noise
from transformers import CLIPModel, CLIPProcessor

from msearch.config import EmbeddingSettings
from msearch.embedding.infinity import InfinityEngine
from msearch.errors import EmbeddingError, EmbeddingTimeout, ImageRejected, ModelUnavailable

LONG_QUERY = (
    "a red dog running on the beach at sunset with a blue ball while a cat "
    "watches from the photo of the sunset on the beach"
)


def _reference(
    model_dir: Path, texts: list[str], images: list[Image.Image]
) -> tuple[np.ndarray, np.ndarray]:
    model = CLIPModel.from_pretrained(str(model_dir)).eval()
    processor = CLIPProcessor.from_pretrained(str(model_dir))
    with torch.no_grad():
        text = model.get_text_features(
            **processor(text=texts, return_tensors="pt", padding=True)
        ).numpy()
        image = model.get_image_features(**processor(images=images, return_tensors="pt")).numpy()
    return (
        text / np.linalg.norm(text, axis=1, keepdims=True),
        image / np.linalg.norm(image, axis=1, keepdims=True),
    )


async def test_vectors_match_transformers(tiny_engine: InfinityEngine, tiny_clip_dir: Path) -> None:
    processor = CLIPProcessor.from_pretrained(str(tiny_clip_dir))
    assert len(processor.tokenizer(LONG_QUERY)["input_ids"]) >= 40
    texts = ["a dog", "the photo of a cat on the beach", LONG_QUERY]
    images = [noise(80, 60, seed=s) for s in range(3)] + [Image.new("RGB", (32, 90), "red")]
    ours_text = np.array(await tiny_engine.embed_texts(texts))
    ours_image = np.array(await tiny_engine.embed_images(images))
    ref_text, ref_image = _reference(tiny_clip_dir, texts, images)
    assert np.all((ours_text * ref_text).sum(axis=1) >= 0.999)
    assert np.all((ours_image * ref_image).sum(axis=1) >= 0.999)
    assert np.allclose(np.linalg.norm(ours_text, axis=1), 1.0, atol=1e-4)


async def test_long_queries_are_not_cut_at_twenty_tokens(
    tiny_engine: InfinityEngine, tiny_clip_dir: Path
) -> None:
    # Two queries equal in their first 20 tokens must still embed differently.
    tail_a, tail_b = " with a red ball", " with a blue cat"
    head = LONG_QUERY
    a, b = await tiny_engine.embed_texts([head + tail_a, head + tail_b])
    assert float(np.dot(a, b)) < 0.9999
    # ...and what Infinity does unpatched (max_length 20) is measurably not transformers.
    ref_text, _ = _reference(tiny_clip_dir, [head + tail_a], [noise(8, 8)])
    processor = CLIPProcessor.from_pretrained(str(tiny_clip_dir))
    model = CLIPModel.from_pretrained(str(tiny_clip_dir)).eval()
    with torch.no_grad():
        cut = model.get_text_features(
            **processor(text=[head + tail_a], return_tensors="pt", truncation=True, max_length=20)
        ).numpy()
    cut /= np.linalg.norm(cut)
    assert float((cut * ref_text).sum()) < 0.999
    assert float(np.dot(a, ref_text[0])) >= 0.999


async def test_reports_model_identity(tiny_engine: InfinityEngine, tiny_clip_dir: Path) -> None:
    assert tiny_engine.dim == 64
    assert tiny_engine.model_id == tiny_clip_dir.name
    assert tiny_engine.device == "cpu"


async def test_rejects_undecoded_input(tiny_engine: InfinityEngine) -> None:
    with pytest.raises(EmbeddingError):
        await tiny_engine.embed_images([Image.new("L", (10, 10))])
    with pytest.raises(EmbeddingError):
        await tiny_engine.embed_images(["/etc/passwd"])  # type: ignore[list-item]


async def test_wedged_engine_times_out_restarts_and_recovers(tiny_clip_dir: Path) -> None:
    """A worker-thread exception wedges Infinity (upstream issue 609): every later call
    hangs. The call must fail within the timeout, and the engine must work again after."""
    engine = InfinityEngine(EmbeddingSettings(model=str(tiny_clip_dir), device="cpu", timeout_s=3))
    await engine.start()
    replica: Any = engine._engine._model_replicas[0]  # the real model object
    original = replica.encode_core

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("simulated CUDA error in the worker thread")

    replica.encode_core = explode
    with pytest.raises(EmbeddingTimeout, match="restarted"):
        await engine.embed_texts(["a dog"])
    replica.encode_core = original
    vectors = await asyncio.wait_for(engine.embed_texts(["a dog"]), timeout=30)
    assert len(vectors[0]) == 64 and engine.restarts == 1
    await engine.stop()


async def test_a_model_step_that_raises_fails_its_batch_alone(
    tiny_clip_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A processor or forward pass raising in Infinity's worker thread ended the thread:
    its callers and every later one waited out the whole timeout for a restart. Now the
    batch's callers learn at once, the thread lives on, and nothing is restarted."""
    engine = InfinityEngine(
        EmbeddingSettings(model=str(tiny_clip_dir), device="cpu", timeout_s=600)
    )
    await engine.start()
    try:
        images = [noise(32, 32, seed=i) for i in range(3)]
        expected = await engine.embed_images(images)
        replica: Any = engine._engine._model_replicas[0]

        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise ValueError("the processor refuses this batch")

        monkeypatch.setattr(replica, "processor", refuse)
        with pytest.raises(EmbeddingError, match="preprocessing: ValueError: the processor"):
            await asyncio.wait_for(engine.embed_images(images), 60)
        monkeypatch.undo()
        monkeypatch.setattr(replica.model, "get_image_features", refuse)
        with pytest.raises(EmbeddingError, match="the forward pass: ValueError"):
            await asyncio.wait_for(engine.embed_images(images), 60)
        monkeypatch.undo()
        again = await asyncio.wait_for(engine.embed_images(images), 60)
        assert np.allclose(again, expected, atol=1e-6) and engine.restarts == 0
        # the query lane's twin has steps of its own, bound to its own processor
        queries = engine.for_queries()
        assert len(await queries.embed_texts(["a dog"])) == 1
        twin: Any = engine._query_lane.engine._model_replicas[0]  # type: ignore[union-attr]
        monkeypatch.setattr(twin, "processor", refuse)
        with pytest.raises(EmbeddingError, match="preprocessing"):
            await asyncio.wait_for(queries.embed_texts(["a dog"]), 60)
        assert len(await engine.embed_texts(["a dog"])) == 1  # indexing's processor is fine
    finally:
        await engine.stop()


async def test_a_model_that_loads_but_cannot_embed_is_unavailable_and_let_go(
    tiny_clip_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Start-up's first embedding failing left Infinity's worker threads running: the
    process could not end (a 'msearch serve' whose model cannot embed hung at exit). Now
    the engine stops them and says the model is unavailable, which the service reports."""
    from infinity_emb.transformer.vision.torch_vision import TIMM

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("this processor has no chat template")

    monkeypatch.setattr(TIMM, "encode_pre", refuse)
    before = set(threading.enumerate())
    engine = InfinityEngine(EmbeddingSettings(model=str(tiny_clip_dir), device="cpu"))
    with pytest.raises(ModelUnavailable, match=r"loads but cannot embed: .*no chat template"):
        await asyncio.wait_for(engine.start(), 120)
    for _ in range(100):
        # (the event loop's own executor, which loaded the model, keeps its idle threads)
        left = [
            t
            for t in set(threading.enumerate()) - before
            if t.is_alive() and not t.name.startswith("asyncio_")
        ]
        if not left:
            break
        await asyncio.sleep(0.1)
    assert not left, left
    with pytest.raises(ModelUnavailable, match="not running"):
        await engine.embed_texts(["a dog"])


async def test_queries_and_indexing_are_separate_failure_domains(tiny_clip_dir: Path) -> None:
    """The query lane shares the weights, not the batch handler: while indexing's lane is
    wedged, queries answer, and a query that wedges its lane fails no indexing call."""
    engine = InfinityEngine(EmbeddingSettings(model=str(tiny_clip_dir), device="cpu", timeout_s=3))
    await engine.start()
    queries = engine.for_queries()
    try:
        expected = await queries.embed_texts(["a dog"])
        indexing: Any = engine._engine._model_replicas[0]
        original = indexing.encode_core

        def explode(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("simulated CUDA error in the worker thread")

        indexing.encode_core = explode
        wedged = asyncio.create_task(engine.embed_images([noise(32, 32)]))
        assert np.allclose(await queries.embed_texts(["a dog"]), expected, atol=1e-6)
        with pytest.raises(EmbeddingTimeout):
            await wedged
        indexing.encode_core = original
        assert engine.restarts == 1 and queries.restarts == 0  # type: ignore[attr-defined]

        query_replica: Any = engine._query_lane.engine._model_replicas[0]  # type: ignore[union-attr]
        assert query_replica.model is indexing.model  # one copy of the weights
        query_original = query_replica.encode_core
        query_replica.encode_core = explode
        broken_query = asyncio.create_task(queries.embed_images([noise(32, 32)]))
        vectors = await engine.embed_images([noise(32, 32, seed=i) for i in range(4)])
        assert len(vectors) == 4
        with pytest.raises(EmbeddingTimeout):
            await broken_query
        assert engine.restarts == 1 and queries.restarts == 1  # type: ignore[attr-defined]
        query_replica.encode_core = query_original
        assert len(await queries.embed_images([noise(32, 32)])) == 1
    finally:
        await engine.stop()


async def test_an_image_the_model_refuses_is_the_images_fault(
    tiny_engine: InfinityEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Infinity refuses images under 3x3 (msearch scales them up first); if one still
    gets through, the error names the image (a 422), not a broken engine (a 503)."""
    monkeypatch.setattr("msearch.embedding.infinity.fit_for_model", lambda image, side: image)
    with pytest.raises(ImageRejected, match="too small") as refused:
        await tiny_engine.for_queries().embed_images([Image.new("RGB", (1, 1))])
    assert refused.value.http_status == 422 and refused.value.code == "image_not_embeddable"
    assert len(await tiny_engine.embed_images([noise(8, 8)])) == 1


async def test_missing_local_model_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "no-model"
    empty.mkdir()
    engine = InfinityEngine(EmbeddingSettings(model=str(empty), device="cpu"))
    with pytest.raises(ModelUnavailable, match="cannot load embedding model"):
        await engine.start()
    offline = InfinityEngine(EmbeddingSettings(model="someone/not-downloaded-model", device="cpu"))
    with pytest.raises(
        ModelUnavailable, match=r"not-downloaded-model.*MSEARCH_EMBEDDING__MODEL.*msearch demo"
    ):
        await offline.start()
