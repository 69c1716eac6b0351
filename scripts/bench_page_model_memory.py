"""Peak memory of a page model embedding a batch of pages, with and without msearch's mend
of its forward pass.

    python scripts/bench_page_model_memory.py --model colqwen2 [--layers 28] [--pages 4]
    python scripts/bench_page_model_memory.py --model colpali [--layers 6] [--pages 1]

colpali-engine's ColQwen2 asks its decoder for every layer's hidden states and keeps the
last; its ColPali runs PaliGemma whole (the vocabulary's logits for every token, every
layer's states, a key-value cache) and keeps the last state. msearch's mends compute that
last state alone. A random model of the real decoder's width (ColQwen2 1,536, ColPali
2,048 with Gemma's 257,216-token vocabulary), narrower MLPs and a tiny vision tower, at the
real page length (ColQwen2's 768-patch budget, ColPali's 1,024 patches), built in memory.
Each side runs in a fresh process and embeds the same pages once to warm up and once
measured: what that pass adds at its peak to the resident memory at rest (sampled every
millisecond). The token vectors' checksums of both sides must agree.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import msearch  # noqa: F401  # its import hook keeps an installed torchvision from breaking transformers

sys.path.insert(0, str(Path(__file__).parent))


def _colqwen2(layers: int, mended: bool) -> tuple[Any, Any]:
    from colpali_engine.models import ColQwen2, ColQwen2Processor
    from make_tiny_colqwen2 import build

    from msearch.embedding.colpali import mend_colpali_engine

    own_inner_forward = ColQwen2.inner_forward
    mend_colpali_engine()
    if not mended:  # colpali-engine's own: every layer's states kept
        ColQwen2.inner_forward = own_inner_forward
    with tempfile.TemporaryDirectory() as folder:
        tiny = build(Path(folder), page_tokens=768)
        processor = ColQwen2Processor.from_pretrained(str(tiny))
        config = ColQwen2.config_class.from_pretrained(str(tiny))
    width, text = 1536, config.text_config
    text.hidden_size, text.intermediate_size, text.num_hidden_layers = width, width, layers
    text.layer_types = ["full_attention"] * layers
    # the real model's heads of 128 dimensions and their rotary sections
    text.num_attention_heads, text.num_key_value_heads = width // 128, 2
    text.rope_scaling = {"type": "mrope", "rope_type": "default", "mrope_section": [16, 24, 24]}
    config.vision_config.hidden_size = width
    return ColQwen2(config).eval(), processor


def _colpali(layers: int, mended: bool) -> tuple[Any, Any]:
    from colpali_engine.models import ColPali, ColPaliProcessor
    from make_tiny_colpali import build

    from msearch.embedding.colpali import mend_colpali_engine

    mend_colpali_engine()
    if not mended:  # colpali-engine's own: PaliGemma whole
        ColPali.forward = ColPali.colpali_engine_forward
    with tempfile.TemporaryDirectory() as folder:
        tiny = build(Path(folder))
        processor = ColPaliProcessor.from_pretrained(str(tiny))
        config = ColPali.config_class.from_pretrained(str(tiny))
    # the real model's 448-px pages of 1,024 patches
    processor.image_processor.size = {"height": 448, "width": 448}
    processor.image_seq_length = processor.image_processor.image_seq_length = 1024
    config.vision_config.image_size, config.vision_config.num_image_tokens = 448, 1024
    width, text = 2048, config.text_config
    text.hidden_size, text.intermediate_size, text.num_hidden_layers = width, width, layers
    text.num_attention_heads, text.num_key_value_heads, text.head_dim = 8, 1, 256
    text.vocab_size = config.vocab_size = 257_216
    config.vision_config.projection_dim = config.projection_dim = width
    return ColPali(config).eval(), processor


def _side(model_name: str, layers: int, pages: int, mended: bool) -> dict[str, float]:
    import torch
    from PIL import Image, ImageDraw

    torch.manual_seed(0)
    build = _colqwen2 if model_name == "colqwen2" else _colpali
    model, processor = build(layers, mended)
    images = []
    for i in range(pages):
        page = Image.new("RGB", (776, 1004), "white")
        ImageDraw.Draw(page).rectangle((60, 80 + 40 * i, 700, 300 + 40 * i), fill=(30, 60, 200))
        images.append(page)
    batch = processor.process_images(images)
    with torch.no_grad():
        model(**batch)
        resting = _rss_mb()
        out, peak = _peak_rss_during(lambda: model(**batch))
    return {
        # what the measured pass added at its peak to the process at rest (the load's own
        # peak, e.g. a random vocabulary's initialisation, can hide it in the high-water mark)
        "forward_peak_mb": round(peak - resting, 1),
        "process_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "tokens": int(out.shape[1]),
        "checksum": round(float(out.abs().sum()), 3),
    }


def _rss_mb() -> float:
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * resource.getpagesize() / 2**20


def _peak_rss_during(work: Any) -> tuple[Any, float]:
    """``work()`` and the highest resident memory seen (sampled every millisecond) while
    it ran."""
    import threading
    import time

    peak, done = _rss_mb(), threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_mb())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = work()
    finally:
        done.set()
        sampler.join()
    return result, max(peak, _rss_mb())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["colqwen2", "colpali"], default="colqwen2")
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--pages", type=int, default=4)
    parser.add_argument("--side", choices=["mended", "unmended"])
    args = parser.parse_args()
    if args.side:
        sizes = (args.model, args.layers, args.pages)
        print(json.dumps(_side(*sizes, args.side == "mended")))
        return
    results = {}
    for side in ("unmended", "mended"):
        run = subprocess.run(
            [
                sys.executable,
                __file__,
                *("--side", side, "--model", args.model),
                *("--layers", str(args.layers), "--pages", str(args.pages)),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        results[side] = json.loads(run.stdout.strip().splitlines()[-1])
    assert results["mended"]["checksum"] == results["unmended"]["checksum"], results
    saved = results["unmended"]["forward_peak_mb"] - results["mended"]["forward_peak_mb"]
    print(
        json.dumps(
            {**results, **vars(args), "saved_mb": round(saved, 1)},
        )
    )


if __name__ == "__main__":
    main()
