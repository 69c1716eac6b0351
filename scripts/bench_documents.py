"""PDF pages indexed through the whole pipeline versus rendering and embedding them alone.

    python scripts/bench_documents.py --model build/bench-models/vit-b32-random --pages 240
    python scripts/bench_documents.py --model ... --page-model build/bench-models/colqwen2-768

Writes ``--files`` PDFs (Letter pages of text, some with a drawn bar chart) of ``--pages``
in all, then in one run: (1) the floor, pypdfium2 rendering each page and reading its text
and the visual engine embedding the pages in the pipeline's batches; (2) ``msearch``'s
pipeline indexing the files from scratch (detect, fingerprint, render, thumbnails, text into
FTS5, embed, persist). Both are pages per second; their ratio is the pipeline's overhead.
With ``--page-model`` (a ColQwen2 directory) both also embed every page with it, a vector
per token, and the pipeline stores those in its multi-vector collection. Last line: JSON.
(``scripts/make_vit_b32_random.py DIR`` writes a full-size random CLIP,
``scripts/make_tiny_colqwen2.py DIR --page-tokens 768`` a small ColQwen2 that gives a real
page's number of vectors.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from PIL import Image  # noqa: E402
from support.pdf_factory import chart_page, text_page, write_pdf  # noqa: E402

WORDS = [
    "budget",
    "meeting",
    "lighthouse",
    "risotto",
    "treaty",
    "orchestra",
    "volcanic",
    "espresso",
    "seagull",
]


def _write(folder: Path, files: int, pages: int) -> list[Path]:
    paths = []
    per_file = max(1, pages // files)
    for i in range(files):
        content = []
        for p in range(per_file):
            if p % 5 == 4:
                content.append(chart_page(f"Figure {i}.{p}"))
            else:
                lines = [" ".join(WORDS[(p + k) % len(WORDS)] for k in range(9))] * 30
                content.append(text_page(f"Document {i} page {p + 1}", *lines, size=11))
        paths.append(write_pdf(folder / f"doc-{i}.pdf", content))
    return paths


async def _floor(
    model: str, page_model: str | None, paths: list[Path], side: int, batch: int
) -> tuple[float, int]:
    from msearch.config import DocumentSettings, EmbeddingSettings
    from msearch.embedding.infinity import InfinityEngine
    from msearch.media.documents import probe_document, read_pages
    from msearch.media.images import square

    settings = EmbeddingSettings(model=model, device="cpu", timeout_s=600, batch_size=batch)
    engine = InfinityEngine(settings)
    await engine.start()
    reader: InfinityEngine | None = None
    if page_model is not None:
        reader = InfinityEngine(DocumentSettings(model=page_model).engine_settings(settings))
        await reader.start()
        side = max(side, reader.input_size)

    async def embed(pages: list[Image.Image]) -> None:
        # the visual model sees each page padded to a square, a page model the page itself
        await asyncio.gather(
            engine.embed_images([square(page) for page in pages]),
            *([reader.embed_pages(pages)] if reader else []),
        )

    try:
        first = next(read_pages(paths[0], count=1, min_short=side))
        await embed([first.image])  # warm-up
        started = time.perf_counter()
        pages = 0
        for path in paths:
            count = probe_document(path).pages
            images = []
            for page in read_pages(path, count=count, min_short=side):
                images.append(page.image)
                if len(images) == batch:
                    await embed(images)
                    pages, images = pages + len(images), []
            if images:
                await embed(images)
                pages += len(images)
        took = time.perf_counter() - started
    finally:
        await engine.stop()
        if reader is not None:
            await reader.stop()
    return pages / took, pages


async def _pipeline(
    model: str, page_model: str | None, paths: list[Path], data: Path, batch: int
) -> tuple[float, int]:
    from msearch.config import load_settings
    from msearch.services import build_services

    settings = load_settings(
        ROOT / "config" / "msearch.yaml",
        data_dir=data,
        embedding={"model": model, "device": "cpu", "batch_size": batch},
        documents={"model": page_model},
        audio={"enabled": False},
        speech={"enabled": False},
    )
    services = await build_services(settings)
    try:
        warm = await services.orchestrator.batch_process_files(paths[:1])  # model warm-up
        assert warm[0].status == "indexed", warm[0].error
        started = time.perf_counter()
        done = await services.orchestrator.batch_process_files(paths[1:])
        took = time.perf_counter() - started
        assert all(r.status == "indexed" for r in done), [r.error for r in done]
        pages = sum(int((r.document or {}).get("indexed_pages", 0)) for r in done)
    finally:
        await services.aclose()
    return pages / took, pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a CLIP directory")
    parser.add_argument("--pages", type=int, default=240)
    parser.add_argument("--files", type=int, default=9)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--page-model", help="a ColQwen2 directory: pages get its vectors too")
    args = parser.parse_args()
    from msearch.config import PerformanceSettings

    # what the pipeline renders: the model's side or the thumbnail's, the larger
    side = max(224, PerformanceSettings().thumbnail_size)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = _write(folder, args.files, args.pages)
        floor, pages = asyncio.run(_floor(args.model, args.page_model, paths[1:], side, args.batch))
        pipeline, indexed = asyncio.run(
            _pipeline(args.model, args.page_model, paths, folder / "data", args.batch)
        )
    assert indexed == pages, (indexed, pages)
    result = {
        "model": Path(args.model).name,
        "page_model": Path(args.page_model).name if args.page_model else None,
        "pages": pages,
        "floor_pages_per_s": round(floor, 2),
        "pipeline_pages_per_s": round(pipeline, 2),
        "ratio": round(pipeline / floor, 3),
    }
    print(
        f"floor {floor:.2f} pages/s, pipeline {pipeline:.2f} pages/s, ratio {pipeline / floor:.2f}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
