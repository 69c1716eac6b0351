"""Chinese queries through the real path: a tiny random Chinese-CLIP (the architecture of
OFA-Sys/chinese-clip-vit-base-patch16, built by scripts/make_tiny_chinese_clip.py) served
by Infinity equals transformers' own computation for queries of 5 and 60 characters, and a
Chinese query travels the HTTP API intact."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from support.app import api_client, index_through_api
from support.media_factory import noise

from msearch.config import EmbeddingSettings, Settings
from msearch.embedding.infinity import InfinityEngine

SHORT = "红色的星星"
LONG = "灰色背景上的一个红色的星星，旁边有一个小蓝色三角形和一个大绿色圆形，还有一个黄色十字"
LONG = (LONG * 2)[:60]


async def test_chinese_queries_and_images_equal_transformers(tiny_chinese_clip_dir: Path) -> None:
    from transformers import ChineseCLIPModel, ChineseCLIPProcessor

    assert len(SHORT) == 5 and len(LONG) == 60
    processor = ChineseCLIPProcessor.from_pretrained(str(tiny_chinese_clip_dir))
    # unsegmented Chinese is read a character at a time, as Chinese-CLIP's vocabulary does
    assert processor.tokenizer.tokenize(SHORT) == list(SHORT)
    images = [noise(80, 60, seed=1), Image.new("RGB", (30, 90), "red")]
    engine = InfinityEngine(
        EmbeddingSettings(model=str(tiny_chinese_clip_dir), device="cpu", timeout_s=60)
    )
    await engine.start()
    try:
        ours_text = np.array(await engine.embed_texts([SHORT, LONG]))
        ours_image = np.array(await engine.embed_images(images))
    finally:
        await engine.stop()
    model = ChineseCLIPModel.from_pretrained(str(tiny_chinese_clip_dir)).eval()
    inputs = processor(text=[SHORT, LONG], images=images, return_tensors="pt", padding=True)
    assert inputs["input_ids"].shape[1] == 62  # [CLS] + 60 characters + [SEP]: nothing cut
    with torch.no_grad():
        out = model(**inputs)  # its forward: the [CLS] token projected, normalised
    assert np.all((ours_text * out.text_embeds.numpy()).sum(axis=1) >= 0.999)
    assert np.all((ours_image * out.image_embeds.numpy()).sum(axis=1) >= 0.999)


async def test_a_chinese_query_travels_the_api_intact(
    make_settings: Callable[..., Settings], tiny_chinese_clip_dir: Path, media_dir: Path
) -> None:
    paths = []
    for seed in range(3):
        path = media_dir / f"{seed}.png"
        noise(64, 64, seed=seed).save(path)
        paths.append(path)
    settings = make_settings(embedding={"model": str(tiny_chinese_clip_dir)})
    engine = InfinityEngine(settings.embedding)
    await engine.start()
    try:
        direct = np.array(await engine.embed_texts([SHORT]))[0]
        async with api_client(settings, engine) as client:
            files = await index_through_api(client, paths)
            assert {f["status"] for f in files.values()} == {"indexed"}
            reply = await client.post(
                "/api/v1/search/text", json={"query": SHORT, "limit": 3, "min_score": -1}
            )
            assert reply.status_code == 200, reply.text
            results = reply.json()["results"]
            assert len(results) == 3
            # the scores are the query's own vector against each image's: nothing garbled
            images = np.array(await engine.embed_images([Image.open(p) for p in paths]))
            expected = sorted((float(v @ direct) for v in images), reverse=True)
            assert np.allclose([r["score"] for r in results], expected, atol=2e-3)
    finally:
        await engine.stop()


async def test_a_multilingual_siglip_equals_transformers(tiny_siglip_dir: Path) -> None:
    """SigLIP (google/siglip-base-patch16-256-multilingual's architecture) pools a text at
    its last position: served by Infinity, a short and a long query embedded in one batch
    each equal SigLIP's own computation (texts padded to the whole context), and so do
    images."""
    from transformers import AutoProcessor, SiglipModel

    processor = AutoProcessor.from_pretrained(str(tiny_siglip_dir))
    assert processor.tokenizer.tokenize(SHORT) == list(SHORT)
    images = [noise(80, 60, seed=2), Image.new("RGB", (30, 90), "blue")]
    engine = InfinityEngine(
        EmbeddingSettings(model=str(tiny_siglip_dir), device="cpu", timeout_s=60)
    )
    await engine.start()
    try:
        assert engine.input_size == 32  # read through the mended processor
        ours_text = np.array(await engine.embed_texts([SHORT, LONG, "a red star"]))
        ours_image = np.array(await engine.embed_images(images))
    finally:
        await engine.stop()
    model = SiglipModel.from_pretrained(str(tiny_siglip_dir)).eval()
    texts = processor(text=[SHORT, LONG, "a red star"], padding="max_length", return_tensors="pt")
    assert texts["input_ids"].shape[1] == 64  # the context: the 60 characters and </s> fit
    with torch.no_grad():
        text = torch.nn.functional.normalize(model.get_text_features(**texts), dim=-1)
        pixels = processor(images=images, return_tensors="pt")["pixel_values"]
        image = torch.nn.functional.normalize(model.get_image_features(pixel_values=pixels), dim=-1)
    assert np.all((ours_text * text.numpy()).sum(axis=1) >= 0.999)
    assert np.all((ours_image * image.numpy()).sum(axis=1) >= 0.999)
