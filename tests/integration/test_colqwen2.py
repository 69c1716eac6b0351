"""ColQwen2 through Infinity on this stack: colpali-engine 0.3.8 with msearch's mends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from msearch.config import EmbeddingSettings
from msearch.embedding.infinity import InfinityEngine


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

    # msearch's loader: the mends, then Infinity's own ColQwen2 path
    engine = InfinityEngine(
        EmbeddingSettings(model=str(tiny_colqwen2_dir), device="cpu", batch_size=4)
    )._load()
    await engine.astart()
    try:
        pages, _ = await engine.image_embed(images=_pages())
        queries, _ = await engine.embed(sentences=["a bar chart", "saffron risotto recipe"])
    finally:
        await engine.astop()

    model = ColQwen2.from_pretrained(str(tiny_colqwen2_dir)).eval()
    processor = ColQwen2Processor.from_pretrained(str(tiny_colqwen2_dir))
    with torch.no_grad():
        expected_pages = [model(**processor.process_images([page]))[0].numpy() for page in _pages()]
        expected_queries = [
            model(**processor.process_queries([q]))[0].numpy()
            for q in ("a bar chart", "saffron risotto recipe")
        ]
    served = [np.asarray(p, dtype=np.float32) for p in pages]
    assert all(p.shape[1] == 128 for p in served)
    # the small page was padded to the chart's length in the batch: its extra rows are
    # all zero (what is stored must leave them out), its own rows equal colpali-engine's
    assert len(served[1]) == len(served[0]) > len(_rows(served[1]))
    for got, want in zip(served, expected_pages, strict=True):
        assert np.allclose(_rows(got), _rows(want), atol=1e-5)
        assert np.allclose(np.linalg.norm(_rows(got), axis=1), 1.0, atol=1e-5)
    for got, want in zip(queries, expected_queries, strict=True):
        assert np.allclose(_rows(np.asarray(got, dtype=np.float32)), _rows(want), atol=1e-5)
