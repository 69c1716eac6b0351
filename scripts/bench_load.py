"""Search under load: many clients searching at once against a real `msearch serve`.

    .venv/bin/python scripts/bench_load.py --images 2000 --clients 64 --seconds 60
    .venv/bin/python scripts/bench_load.py ... --while-indexing 1000 --videos 6

Indexes N generated images with the tiny test model (built here, cached under build/),
then C clients (keep-alive HTTP/1.1 on loopback, a client light enough not to be the
bottleneck) send text searches back to back for S seconds, each a new query unless
``--repeat-queries``. With ``--while-indexing`` a batch
of that many new images and ``--videos`` videos is submitted as the clients start. Bounded
in time and count, loopback only. Last line: {"requests", "errors", "req_per_s", "p50_ms",
"p90_ms", "p99_ms", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WORDS = (
    "red",
    "green",
    "blue",
    "noise",
    "star",
    "circle",
    "square",
    "dog",
    "beach",
    "sunset",
    "a photo of a cat",
    "mountains in the snow",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tiny_model() -> Path:
    out = ROOT / "build" / "bench-models" / "tiny-clip"
    if not (out / "model.safetensors").is_file():
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "make_tiny_clip.py"), str(out)],
            check=True,
            capture_output=True,
        )
    return out


def _images(folder: Path, count: int, seed: int) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    for i in range(count):
        pixels = rng.randint(0, 255, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:05}.png")


def _videos(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    master = folder / "00.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-y",
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=640x360:rate=25",
            "-t",
            "20",
            "-vf",
            "noise=alls=12:allf=t",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            str(master),
        ],
        check=True,
    )
    for i in range(1, count):
        shutil.copy(master, folder / f"{i:02}.mp4")


async def _client(
    host: str,
    port: int,
    deadline: float,
    latencies: list[float],
    errors: list[str],
    seed: int,
    unique: bool,
) -> None:
    rng = random.Random(seed)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            query = (
                f"{rng.choice(WORDS)} {rng.choice(WORDS)} {rng.randrange(10**9)}"
                if unique
                else rng.choice(WORDS)
            )
            body = json.dumps({"query": query, "limit": 20}).encode()
            request = (
                b"POST /api/v1/search/text HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(str(status))
    except (OSError, asyncio.IncompleteReadError) as exc:
        errors.append(type(exc).__name__)
    finally:
        writer.close()


async def _load(port: int, clients: int, seconds: float, unique: bool = True) -> dict[str, float]:
    latencies: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *(
            _client("127.0.0.1", port, deadline, latencies, errors, i, unique)
            for i in range(clients)
        )
    )
    took = time.perf_counter() - started
    ms = np.array(latencies) * 1000 if latencies else np.array([0.0])
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "req_per_s": round(len(latencies) / took, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p90_ms": round(float(np.percentile(ms, 90)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
    }


def _wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("msearch serve exited")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit("msearch serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--while-indexing", type=int, default=0, metavar="N")
    parser.add_argument("--videos", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="reuse/keep this work directory")
    parser.add_argument(
        "--repeat-queries",
        action="store_true",
        help="12 queries asked again and again (served from the query "
        "cache) instead of a new query each time",
    )
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="msearch-load-"))
    library, extra = work / "library", work / "extra"
    env = {
        **os.environ,
        "MSEARCH_DATA_DIR": str(work / "data"),
        "MSEARCH_EMBEDDING__MODEL": str(_tiny_model()),
        "MSEARCH_EMBEDDING__DEVICE": "cpu",
        "MSEARCH_API__ALLOWED_ROOTS": json.dumps([str(work)]),
        "HF_HUB_OFFLINE": "1",
        "INFINITY_HOME": str(ROOT / "build" / "infinity"),
    }
    if not library.is_dir():
        _images(library, args.images, seed=0)
        subprocess.run(
            [sys.executable, "-m", "msearch", "index", str(library), "--no-progress"],
            env=env,
            check=True,
            capture_output=True,
        )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (work / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "msearch", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        _wait_healthy(url, proc)
        if args.while_indexing or args.videos:
            import httpx

            shutil.rmtree(extra, ignore_errors=True)
            _images(extra / "images", args.while_indexing, seed=1)
            if args.videos:
                _videos(extra / "videos", args.videos)
            response = httpx.post(
                f"{url}/api/v1/files/batch-process", json={"paths": [str(extra)]}, timeout=60
            )
            response.raise_for_status()
        result = asyncio.run(
            _load(port, args.clients, args.seconds, unique=not args.repeat_queries)
        )
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(
        json.dumps(
            {
                "images": args.images,
                "clients": args.clients,
                "queries": "repeated" if args.repeat_queries else "unique",
                "seconds": args.seconds,
                "while_indexing": args.while_indexing,
                "videos": args.videos,
                **result,
            }
        )
    )


if __name__ == "__main__":
    main()
