"""What watching a folder costs, next to indexing the same files directly.

    python scripts/bench_watch.py --n 200

Generates N 1920x1080 JPEGs and, with one random full-size ViT-B/32 engine, alternates
(``--rounds`` times) between
  * direct: ``batch_process_files`` on the files in a fresh data dir;
  * watched: a fresh data dir watching an empty folder, the N files copied in as fast as
    the disk takes them; timed from the first copy until every file is indexed.
Then, in the watched folder: the latency from one new file to it being searchable, and a
directory move of all N files (recognised by fingerprint: no embedding).
Last line: {"n", "direct_s", "watched_s", "ratio", "one_file_latency_s", "move_s", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from bench_index import photo_like  # noqa: E402
from make_vit_b32_random import build  # noqa: E402


def _settings(data_dir: Path, model_dir: Path, args: argparse.Namespace) -> Any:
    from msearch.config import load_settings

    return load_settings(
        None,
        data_dir=data_dir,
        embedding={"model": str(model_dir), "device": args.device},
        file_monitoring={"debounce_ms": args.debounce_ms, "rescan_interval_s": 0},
    )


async def _poll(condition: Callable[[], Awaitable[bool]]) -> None:
    # The states polled belong to the service; none offers an event to wait on.
    while not await condition():  # noqa: ASYNC110
        await asyncio.sleep(0.05)


async def _until_indexed(services: Any, count: int) -> None:
    async def done() -> bool:
        counts = await services.adapter.status_counts()
        return bool(counts.get("indexed", 0) >= count)

    await _poll(done)


async def direct(
    engine: Any, files: list[Path], work: Path, model_dir: Path, args: argparse.Namespace
) -> float:
    from msearch.services import build_services

    services = await build_services(_settings(work / "data", model_dir, args), engine=engine)
    try:
        started = time.perf_counter()
        outcomes = await services.orchestrator.batch_process_files(files)
        took = time.perf_counter() - started
        assert all(r.status == "indexed" for r in outcomes)
        return took
    finally:
        await services.aclose()


async def watched(
    engine: Any,
    files: list[Path],
    work: Path,
    model_dir: Path,
    args: argparse.Namespace,
    *,
    extras: bool,
) -> dict[str, float]:
    from msearch.services import build_services

    services = await build_services(
        _settings(work / "data", model_dir, args), engine=engine, watch=True
    )
    folder = work / "watched"
    folder.mkdir()
    try:
        await services.monitor.add(folder.resolve())
        incoming = _mkdir(folder / "in")
        started = time.perf_counter()
        for path in files:
            await asyncio.to_thread(shutil.copy2, path, incoming / path.name)
        await _until_indexed(services, len(files))
        result = {"watched_s": time.perf_counter() - started}
        if not extras:
            return result
        latencies = []
        for i in range(3):
            started = time.perf_counter()
            photo_like(10_000 + i).save(folder / f"late-{i}.jpg", "JPEG", quality=88)
            await _until_indexed(services, len(files) + i + 1)
            latencies.append(time.perf_counter() - started)
        result["one_file_latency_s"] = sorted(latencies)[1]
        embedded_before = engine.images_embedded
        started = time.perf_counter()
        incoming.rename(folder / "moved")
        moved = str((folder / "moved" / files[-1].name).resolve())

        async def relocated() -> bool:
            found = await services.adapter.get_files_by_path([moved])
            return bool(found) and not services.orchestrator.queued and services.monitor.idle

        await _poll(relocated)
        result["move_s"] = time.perf_counter() - started
        result["move_embedded"] = engine.images_embedded - embedded_before
        return result
    finally:
        await services.aclose()


def _mkdir(path: Path) -> Path:
    path.mkdir(exist_ok=True)
    return path


class Counting:
    """The real engine, with a count of embedded images (moves must add none)."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self.images_embedded = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    async def embed_images(self, images: list[Any]) -> list[list[float]]:
        self.images_embedded += len(images)
        return list(await self._engine.embed_images(images))


async def run(
    files: list[Path], tmp: Path, model_dir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    from msearch.embedding.factory import create_engine

    settings = _settings(tmp / "unused", model_dir, args)
    engine = Counting(create_engine(settings.embedding, cache_dir=tmp / "cache"))
    await engine.start()
    try:
        await direct(engine, files[:8], tmp / "warm", model_dir, args)  # warm-up
        direct_s: list[float] = []
        watched_s: list[float] = []
        extras: dict[str, float] = {}
        for round_ in range(args.rounds):
            direct_s.append(await direct(engine, files, tmp / f"d{round_}", model_dir, args))
            result = await watched(
                engine, files, tmp / f"w{round_}", model_dir, args, extras=round_ == args.rounds - 1
            )
            watched_s.append(result.pop("watched_s"))
            extras.update(result)
            print(
                f"round {round_}: direct {direct_s[-1]:.1f}s, watched {watched_s[-1]:.1f}s",
                file=sys.stderr,
            )
    finally:
        await engine.stop()
    ratios = [w / d for w, d in zip(watched_s, direct_s, strict=True)]
    return {
        "n": len(files),
        "debounce_ms": args.debounce_ms,
        "direct_s": round(min(direct_s), 2),
        "watched_s": round(min(watched_s), 2),
        "ratio": round(sorted(ratios)[len(ratios) // 2], 3),
        **{k: round(v, 3) for k, v in extras.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--debounce-ms", type=int, default=1000)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument(
        "--model-dir", type=Path, default=ROOT / "build" / "bench-models" / "vit-b-32-random"
    )
    args = parser.parse_args()
    model_dir = build(args.model_dir)
    with tempfile.TemporaryDirectory() as raw:
        tmp = Path(raw)
        source = _mkdir(tmp / "source")
        files = []
        for i in range(args.n):
            path = source / f"{i:05}.jpg"
            photo_like(i).save(path, "JPEG", quality=88)
            files.append(path)
        print(json.dumps(asyncio.run(run(files, tmp, model_dir, args))))


if __name__ == "__main__":
    main()
