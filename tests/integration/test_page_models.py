"""ColQwen2, ColPali and ColIdefics2 through Infinity on this stack (colpali-engine 0.3.8
with msearch's mends): a vector per token of a page or a query, padding rows left out,
every weight of a checkpoint saved under the real models' names loaded; adapters refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw
from support.app import api_client, index_through_api
from support.pdf_factory import text_page, write_pdf

from msearch.config import EmbeddingSettings, Settings
from msearch.embedding.colpali import may_be_col_model
from msearch.embedding.infinity import InfinityEngine
from msearch.embedding.registry import EngineKind
from msearch.errors import ModelUnavailable
from msearch.media.documents import read_pages
from msearch.media.images import square
from msearch.store.vectors import point_id


def _pages() -> list[Image.Image]:
    chart = Image.new("RGB", (420, 560), "white")
    draw = ImageDraw.Draw(chart)
    for i, height in enumerate((120, 260, 90, 330)):
        draw.rectangle((60 + 80 * i, 500 - height, 110 + 80 * i, 500), fill=(40, 90, 200))
    text = Image.new("RGB", (200, 120), "white")
    ImageDraw.Draw(text).text((10, 40), "saffron risotto", fill="black")
    return [chart, text]


def _rows(multivector: np.ndarray) -> np.ndarray:
    return multivector[np.abs(multivector).sum(axis=-1) > 0]


def _assert_every_weight_loaded(model: Any, checkpoint: Path) -> None:
    """Each tensor of the checkpoint is in the loaded model (a name the model does not
    know would leave a randomly initialised weight in its place, with only a warning)."""
    from safetensors.torch import load_file

    loaded = list(model.state_dict().values())
    for name, tensor in load_file(checkpoint / "model.safetensors").items():
        assert any(w.shape == tensor.shape and bool((w == tensor).all()) for w in loaded), (
            f"{name} was not loaded"
        )


async def _served_by_infinity(
    model_dir: Path, queries: list[str]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    engine = InfinityEngine(EmbeddingSettings(model=str(model_dir), device="cpu", batch_size=4))
    await engine.start()
    try:
        assert engine.multivector and engine.dim == 128
        # both pages in one batch: the shorter one is padded to the longer one's length
        pages = await engine.embed_pages(_pages())
        asked = await engine.for_queries().embed_query_tokens(queries)
        with pytest.raises(ModelUnavailable, match="vector per token"):
            await engine.embed_images(_pages())
        with pytest.raises(ModelUnavailable, match="vector per token"):
            await engine.embed_texts(queries)
    finally:
        await engine.stop()
    return [np.asarray(p) for p in pages], [np.asarray(q) for q in asked]


def _assert_equal_tokens(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    for mine, theirs in zip(got, want, strict=True):
        # the padding rows are gone, each kept row equals colpali-engine's and is unit length
        assert np.allclose(mine, _rows(theirs), atol=1e-5)
        assert np.allclose(np.linalg.norm(mine, axis=1), 1.0, atol=1e-5)


async def test_a_tiny_colqwen2_served_by_infinity_equals_colpali_engine(
    tiny_colqwen2_dir: Path,
) -> None:
    import torch
    from colpali_engine.models import ColQwen2, ColQwen2Processor

    queries = ["a bar chart", "saffron risotto recipe"]
    pages, asked = await _served_by_infinity(tiny_colqwen2_dir, queries)

    model = ColQwen2.from_pretrained(str(tiny_colqwen2_dir)).eval()
    # saved as vidore/colqwen2-v1.0-merged is: Qwen2-VL's names of transformers 4.47
    _assert_every_weight_loaded(model, tiny_colqwen2_dir)
    processor = ColQwen2Processor.from_pretrained(str(tiny_colqwen2_dir))
    asked_for_states: list[object] = []
    model.model.language_model.register_forward_pre_hook(
        lambda _module, _args, kwargs: asked_for_states.append(kwargs["output_hidden_states"]),
        with_kwargs=True,
    )
    with torch.no_grad():
        expected_pages = [model(**processor.process_images([p]))[0].numpy() for p in _pages()]
        expected_queries = [model(**processor.process_queries([q]))[0].numpy() for q in queries]
    # the decoder kept only its last state (every layer's is hundreds of MB a page)
    assert asked_for_states == [False] * 4
    _assert_equal_tokens(pages, expected_pages)
    # a Qwen2-VL page is as many tokens as its shape needs: the small page has fewer
    assert len(pages[1]) < len(pages[0])
    _assert_equal_tokens(asked, expected_queries)


async def test_a_colpali_checkpoint_loads_whole_and_infinity_equals_colpali_engine(
    tiny_colpali_dir: Path, tmp_path: Path
) -> None:
    """A ColPali saved as the real ones are (PaliGemma's names of transformers 4.47) loads
    every weight on this stack, saves under those names again, and Infinity gives what
    colpali-engine computes."""
    import torch
    from colpali_engine.models import ColPali, ColPaliProcessor
    from safetensors import safe_open

    with safe_open(str(tiny_colpali_dir / "model.safetensors"), "pt") as weights:
        names = list(weights.keys())
    assert any(n.startswith("model.language_model.model.layers.0.") for n in names)
    assert any(n.startswith("model.vision_tower.vision_model.") for n in names)

    queries = ["a bar chart", "saffron risotto recipe"]
    pages, asked = await _served_by_infinity(tiny_colpali_dir, queries)

    model = ColPali.from_pretrained(str(tiny_colpali_dir)).eval()
    _assert_every_weight_loaded(model, tiny_colpali_dir)
    # the language head is the token embeddings, as in the checkpoint (which holds no head)
    head, embeddings = model.model.lm_head.weight, model.get_input_embeddings().weight
    assert head.data_ptr() == embeddings.data_ptr()
    model.save_pretrained(tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as weights:
        assert set(weights.keys()) == set(names)
    processor = ColPaliProcessor.from_pretrained(str(tiny_colpali_dir))
    heads: list[object] = []
    model.model.lm_head.register_forward_hook(lambda *_: heads.append(None))
    inputs = [processor.process_images([p]) for p in _pages()]
    inputs += [processor.process_queries([q]) for q in queries]
    with torch.no_grad():
        mended = [model(**dict(batch))[0].numpy() for batch in inputs]
        # colpali-engine's own forward pass: PaliGemma whole, every layer's states and
        # the vocabulary's logits for every token
        own = [ColPali.colpali_engine_forward(model, **dict(b))[0].numpy() for b in inputs]
    assert len(heads) == 4  # only colpali-engine's own passes computed any logits
    for mine, theirs in zip(mended, own, strict=True):
        assert np.allclose(mine, theirs, atol=1e-6)
    _assert_equal_tokens(pages, mended[:2])
    # every page is the same 16 patches after the processor's resize, plus its prompt
    assert len(pages[0]) == len(pages[1]) > 16
    _assert_equal_tokens(asked, own[2:])


async def test_a_tiny_colidefics2_served_by_infinity_equals_colpali_engine(
    tiny_colidefics2_dir: Path,
) -> None:
    """ColIdefics2's processor keeps its saved chat template and page length (colpali-engine
    0.3.8's own __init__ hid them from transformers 4.57, and every page failed)."""
    import torch
    from colpali_engine.models import ColIdefics2, ColIdefics2Processor

    queries = ["a bar chart", "saffron risotto recipe"]
    pages, asked = await _served_by_infinity(tiny_colidefics2_dir, queries)

    model = ColIdefics2.from_pretrained(str(tiny_colidefics2_dir)).eval()
    _assert_every_weight_loaded(model, tiny_colidefics2_dir)
    processor = ColIdefics2Processor.from_pretrained(str(tiny_colidefics2_dir))
    assert processor.chat_template and processor.image_seq_len == 16
    with torch.no_grad():
        expected_pages = [model(**processor.process_images([p]))[0].numpy() for p in _pages()]
        expected_queries = [model(**processor.process_queries([q]))[0].numpy() for q in queries]
    _assert_equal_tokens(pages, expected_pages)
    _assert_equal_tokens(asked, expected_queries)


async def test_a_lora_adapter_as_page_model_is_left_out_saying_what_to_use(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine, tmp_path: Path
) -> None:
    """vidore/colqwen2-v1.0 (the name people find first) is a LoRA adapter with no
    config.json: the page model is left out and /health says to use a merged checkpoint."""
    adapter = tmp_path / "colqwen2-v1.0"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": "vidore/colqwen2-base", "peft_type": "LORA"})
    )
    settings = make_settings(
        documents={"model": str(adapter)}, audio={"enabled": False}, speech={"enabled": False}
    )
    async with api_client(settings, tiny_engine) as client:
        health = (await client.get("/health")).json()
        assert health["status"] == "ok"
        [off] = health["engines_off"]
        assert off["kind"] == "document"
        assert "LoRA adapter" in off["reason"] and "vidore/colqwen2-base" in off["reason"]
        assert "set documents.model to a merged checkpoint" in off["reason"]


def test_colpali_engine_is_mended_before_a_model_still_to_download(
    tiny_clip_dir: Path, tiny_colqwen2_dir: Path
) -> None:
    """Whether a hub id is a ColQwen2 cannot be read before it is downloaded, and loading
    one unmended fails (or, for ColPali, gives a random model): it is mended anyway."""
    assert may_be_col_model("vidore/colqwen2-v1.0-merged", on_disk=False)
    assert may_be_col_model(str(tiny_colqwen2_dir), on_disk=True)
    assert not may_be_col_model(str(tiny_clip_dir), on_disk=True)


async def test_pages_are_found_through_a_page_model_beside_their_words_and_looks(
    make_settings: Callable[..., Settings],
    tiny_engine: InfinityEngine,
    tiny_colqwen2_dir: Path,
    media_dir: Path,
) -> None:
    """With ``documents.model`` set, every page gets a vector per token in a multi-vector
    collection of its own, and a text query's tokens find pages by MaxSim, fused with the
    visual model's and the words' rankings; a changed PDF replaces its pages there too."""
    phrases = ["quarterly revenue table", "saffron risotto recipe", "a bar chart of sales"]
    pdf = write_pdf(
        media_dir / "report.pdf", [text_page(f"Page {i + 1}", p) for i, p in enumerate(phrases)]
    )
    settings = make_settings(
        documents={"model": str(tiny_colqwen2_dir), "batch_size": 2},
        audio={"enabled": False},
        speech={"enabled": False},
    )
    async with api_client(settings, tiny_engine) as client:
        record = (await index_through_api(client, [pdf]))["report.pdf"]
        assert record["status"] == "indexed", record
        services = client.app.state.services  # type: ignore[attr-defined]
        adapter = services.adapter
        collection = adapter.serving_collection("document")
        assert await adapter._vectors.count(collection) == 3

        # the page model alone: its ranking is MaxSim of the query's tokens (numpy, over
        # the tokens the engine gives each page), averaged over the query's tokens
        engine = services.engines.get(EngineKind.DOCUMENT)
        [query] = await engine.embed_query_tokens(["saffron risotto recipe"])
        # the pictures the pipeline made of the pages: rendered as large as the largest
        # model (or the thumbnail) needs; the page model sees each page as it is, the
        # visual model (which crops) padded to a square
        side = max(tiny_engine.input_size, engine.input_size, settings.performance.thumbnail_size)
        rendered = [p.image for p in read_pages(pdf, count=3, min_short=side)]
        assert all(image.height > image.width for image in rendered)
        pages = await engine.embed_pages(rendered)
        looks = await tiny_engine.embed_images([square(image) for image in rendered])
        stored = await adapter._vectors.retrieve_vectors(
            adapter.serving_collection("visual"), [point_id(record["file_id"], i) for i in range(3)]
        )
        for i in range(3):
            assert np.allclose(stored[point_id(record["file_id"], i)], looks[i], atol=1e-5)
        maxsim = [float((np.asarray(query) @ np.asarray(p).T).max(axis=1).mean()) for p in pages]
        reply = await client.post(
            "/api/v1/search/text",
            json={"query": "saffron risotto recipe", "modalities": ["document"], "min_score": -1},
        )
        assert reply.status_code == 200, reply.text
        hits = reply.json()["results"]
        order = sorted(range(3), key=lambda i: -maxsim[i])
        assert [h["page"]["number"] for h in hits] == [i + 1 for i in order]
        for hit in hits:
            assert hit["score"] == pytest.approx(maxsim[hit["page"]["number"] - 1], abs=1e-3)

        # everything together: the words find page 2 first
        reply = await client.post("/api/v1/search/text", json={"query": "saffron risotto"})
        assert reply.json()["results"][0]["page"]["number"] == 2

        # one page now: the page model's collection holds one point for the file
        write_pdf(pdf, [text_page("Page 1", "only this page is left")])
        record = (await index_through_api(client, [pdf]))["report.pdf"]
        assert record["status"] == "indexed"
        assert await adapter._vectors.count(collection) == 1
