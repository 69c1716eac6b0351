"""Peak memory of a ColQwen2 embedding a batch of pages, with and without msearch's mend
that stops the decoder keeping every layer's hidden states.

    python scripts/bench_page_model_memory.py [--width 1536] [--layers 8] [--pages 4]

A random ColQwen2 of the real model's width (the real one has 28 layers: the saving grows
with them) and the real 768-patch page budget, built in memory. Each side runs in a fresh
process (peak RSS cannot be reset), embeds the same pages once to warm up and once
measured; it prints the peak RSS and the token vectors' checksum of each side, which must
agree.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

import msearch  # noqa: F401  # its import hook keeps an installed torchvision from breaking transformers


def _side(width: int, layers: int, pages: int, mended: bool) -> dict[str, float]:
    import tempfile
    from pathlib import Path

    import torch
    from colpali_engine.models import ColQwen2, ColQwen2Processor
    from PIL import Image, ImageDraw

    from msearch.embedding import colpali

    own_inner_forward = ColQwen2.inner_forward
    colpali.mend_colpali_engine()
    if not mended:  # colpali-engine's own inner_forward, every layer's states kept
        ColQwen2.inner_forward = own_inner_forward
    sys.path.insert(0, str(Path(__file__).parent))
    from make_tiny_colqwen2 import build

    with tempfile.TemporaryDirectory() as folder:
        tiny = build(Path(folder), page_tokens=768)
        processor = ColQwen2Processor.from_pretrained(str(tiny))
        config = ColQwen2.config_class.from_pretrained(str(tiny))
    text = config.text_config
    text.hidden_size, text.num_hidden_layers = width, layers
    text.layer_types = ["full_attention"] * layers
    # the real model's heads of 128 dimensions and their rotary sections
    text.intermediate_size, text.num_attention_heads, text.num_key_value_heads = (
        width,
        width // 128,
        2,
    )
    text.rope_scaling = {"type": "mrope", "rope_type": "default", "mrope_section": [16, 24, 24]}
    config.vision_config.hidden_size = width
    torch.manual_seed(0)
    model = ColQwen2(config).eval()
    images = []
    for i in range(pages):
        page = Image.new("RGB", (776, 1004), "white")
        ImageDraw.Draw(page).rectangle((60, 80 + 40 * i, 700, 300 + 40 * i), fill=(30, 60, 200))
        images.append(page)
    batch = processor.process_images(images)
    with torch.no_grad():
        model(**batch)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out = model(**batch)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "peak_mb": round(peak, 1),
        "warm_peak_mb": round(before, 1),
        "tokens": int(out.shape[1]),
        "checksum": round(float(out.abs().sum()), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1536)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--pages", type=int, default=4)
    parser.add_argument("--side", choices=["mended", "unmended"])
    args = parser.parse_args()
    if args.side:
        print(json.dumps(_side(args.width, args.layers, args.pages, args.side == "mended")))
        return
    results = {}
    for side in ("unmended", "mended"):
        run = subprocess.run(
            [
                sys.executable,
                __file__,
                "--side",
                side,
                "--width",
                str(args.width),
                "--layers",
                str(args.layers),
                "--pages",
                str(args.pages),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        results[side] = json.loads(run.stdout.strip().splitlines()[-1])
    assert results["mended"]["checksum"] == results["unmended"]["checksum"], results
    saved = results["unmended"]["peak_mb"] - results["mended"]["peak_mb"]
    print(
        json.dumps(
            {
                **results,
                "width": args.width,
                "layers": args.layers,
                "pages": args.pages,
                "saved_mb": round(saved, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
