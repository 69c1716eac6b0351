"""ColQwen2 through Infinity on this stack (colpali-engine 0.3.8 with msearch's mends): a
vector per token of a page or a query, padding rows left out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from msearch.config import EmbeddingSettings
from msearch.embedding.infinity import InfinityEngine
from msearch.errors import ModelUnavailable


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


async def test_a_tiny_colqwen2_served_by_infinity_equals_colpali_engine(
    tiny_colqwen2_dir: Path,
) -> None:
    import torch
    from colpali_engine.models import ColQwen2, ColQwen2Processor

    queries = ["a bar chart", "saffron risotto recipe"]
    engine = InfinityEngine(
        EmbeddingSettings(model=str(tiny_colqwen2_dir), device="cpu", batch_size=4)
    )
    await engine.start()
    try:
        assert engine.multivector and engine.dim == 128
        # both pages in one batch: the small one is padded to the chart's length there
        pages = await engine.embed_pages(_pages())
        asked = await engine.for_queries().embed_query_tokens(queries)
        with pytest.raises(ModelUnavailable, match="vector per token"):
            await engine.embed_images(_pages())
        with pytest.raises(ModelUnavailable, match="vector per token"):
            await engine.embed_texts(queries)
    finally:
        await engine.stop()

    model = ColQwen2.from_pretrained(str(tiny_colqwen2_dir)).eval()
    processor = ColQwen2Processor.from_pretrained(str(tiny_colqwen2_dir))
    with torch.no_grad():
        expected_pages = [model(**processor.process_images([p]))[0].numpy() for p in _pages()]
        expected_queries = [model(**processor.process_queries([q]))[0].numpy() for q in queries]
    for got, want in zip(pages, expected_pages, strict=True):
        # the padding rows are gone, each kept row equals colpali-engine's and is unit length
        assert np.allclose(np.asarray(got), _rows(want), atol=1e-5)
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert len(pages[1]) < len(pages[0])
    for got, want in zip(asked, expected_queries, strict=True):
        assert np.allclose(np.asarray(got), _rows(want), atol=1e-5)
