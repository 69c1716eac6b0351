"""Check the GPU path: the model on CUDA in fp16 through Infinity, vectors close to fp32.

    python scripts/check_gpu.py MODEL_DIR

Last line: {"device", "dtype", "image_cosine_min", "text_cosine_min", "images_per_s"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import msearch  # noqa: F401  # its import hook keeps an installed torchvision from breaking transformers
from msearch.config import EmbeddingSettings
from msearch.embedding.infinity import InfinityEngine


def _images(n: int) -> list[Image.Image]:
    rng = np.random.RandomState(0)
    return [Image.fromarray(rng.randint(0, 255, (240, 320, 3), dtype=np.uint8)) for _ in range(n)]


async def main(model_dir: Path, device: str) -> None:
    engine = InfinityEngine(EmbeddingSettings(model=str(model_dir), device=device))
    await engine.start()
    try:
        await _check(engine, model_dir)
    finally:  # a failed check must not leave Infinity's threads holding the process
        await engine.stop()


async def _check(engine: InfinityEngine, model_dir: Path) -> None:
    from transformers import CLIPModel, CLIPProcessor

    replica = engine._engine._model_replicas[0]
    param = next(replica.model.parameters())
    images = _images(8)
    texts = [
        "a dog",
        "a photo of the beach at sunset with a red umbrella and two dogs "
        "playing in the waves while people watch from the sand",
    ]
    ours_img = np.array(await engine.embed_images(images))
    ours_txt = np.array(await engine.embed_texts(texts))
    model = CLIPModel.from_pretrained(str(model_dir)).eval()
    processor = CLIPProcessor.from_pretrained(str(model_dir))
    with torch.no_grad():
        ref_img = model.get_image_features(**processor(images=images, return_tensors="pt"))
        # the text tower's 77 positions: msearch cuts a longer query there too
        ref_txt = model.get_text_features(
            **processor(text=texts, return_tensors="pt", padding=True, truncation=True)
        )
    ref_img = torch.nn.functional.normalize(ref_img, dim=-1).numpy()
    ref_txt = torch.nn.functional.normalize(ref_txt, dim=-1).numpy()
    many = _images(256)
    await engine.embed_images(many[:64])
    started = time.perf_counter()
    await asyncio.gather(*[engine.embed_images(many[i : i + 32]) for i in range(0, 256, 32)])
    rate = 256 / (time.perf_counter() - started)
    print(
        json.dumps(
            {
                "device": str(param.device),
                "dtype": str(param.dtype).removeprefix("torch."),
                "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                "image_cosine_min": round(float((ours_img * ref_img).sum(1).min()), 5),
                "text_cosine_min": round(float((ours_txt * ref_txt).sum(1).min()), 5),
                "images_per_s": round(rate, 1),
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    args = parser.parse_args()
    asyncio.run(main(args.model_dir, args.device))
