"""Scene detection speed and accuracy versus pure decoding and PySceneDetect.

    python scripts/bench_scenes.py [--videos 3] [--seconds 24]

Generates 1080p H.264 videos with known cuts (lavfi sources of irregular lengths, with film
grain so that decoding costs what real footage costs), then times on the same files:
msearch's one-pass scene detection + keyframe extraction, the decode alone
(`ffmpeg -i F -f null -`), and PySceneDetect's ContentDetector; F1 of the cuts (±0.1 s).
Last line: {"msearch_s", "decode_s", "pyscenedetect_s", "f1", "pyscenedetect_f1"}.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the tests' video maker (tests/support)

from support.video_factory import segments_video  # noqa: E402

from msearch.config import VideoSettings  # noqa: E402
from msearch.media.video import FFmpegSceneDetector, probe  # noqa: E402

SOURCES = (
    "testsrc",
    "smptebars",
    "color=c=red",
    "testsrc2",
    "smptehdbars",
    "color=c=blue",
    "life",
    "yuvtestsrc",
    "color=c=yellow",
    "cellauto",
)


def make_video(path: Path, seconds: float, rng: random.Random) -> list[float]:
    durations: list[float] = []
    while sum(durations) < seconds:
        durations.append(round(rng.uniform(1.2, 4.0) * 25) / 25)  # whole frames
    return segments_video(
        path, durations, size="1920x1080", sources=SOURCES, grain=4, preset="veryfast"
    )


def f1(found: list[float], truth: list[float], tol: float = 0.1) -> float:
    tp_found = sum(any(abs(f - t) <= tol for t in truth) for f in found)
    tp_truth = sum(any(abs(f - t) <= tol for f in found) for t in truth)
    precision = tp_found / len(found) if found else 0.0
    recall = tp_truth / len(truth) if truth else 1.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def msearch_cuts(path: Path) -> list[float]:
    detector = FFmpegSceneDetector(VideoSettings(min_scene_seconds=0.5))
    scenes = list(detector.scenes(path, probe(path), min_short=224))
    return [k.scene.start for k in scenes[1:]]


def pyscenedetect_cuts(path: Path) -> list[float]:
    from scenedetect import ContentDetector, detect

    scenes = detect(str(path), ContentDetector())
    return [start.seconds for start, _ in scenes[1:]]


def decode_only(path: Path) -> None:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(path), "-an", "-f", "null", "-"],
        check=True,
    )


def timed(fn: object, path: Path) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn(path)  # type: ignore[operator]
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=24)
    args = parser.parse_args()
    rng = random.Random(0)
    totals = {"msearch": 0.0, "decode": 0.0, "pyscenedetect": 0.0}
    f1s: dict[str, list[float]] = {"msearch": [], "pyscenedetect": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.videos):
            path = Path(tmp) / f"v{i}.mp4"
            truth = make_video(path, args.seconds, rng)
            decode_only(path)  # warm the page cache for everyone
            for name, fn in (
                ("decode", decode_only),
                ("msearch", msearch_cuts),
                ("pyscenedetect", pyscenedetect_cuts),
            ):
                seconds, cuts = timed(fn, path)
                totals[name] += seconds
                if name in f1s:
                    f1s[name].append(f1(cuts, truth))  # type: ignore[arg-type]
            print(
                f"video {i}: {len(truth)} cuts, "
                + ", ".join(f"{k} {v:.2f}s" for k, v in totals.items()),
                file=sys.stderr,
            )
    result = {
        "msearch_s": round(totals["msearch"], 2),
        "decode_s": round(totals["decode"], 2),
        "pyscenedetect_s": round(totals["pyscenedetect"], 2),
        "f1": round(sum(f1s["msearch"]) / len(f1s["msearch"]), 4),
        "pyscenedetect_f1": round(sum(f1s["pyscenedetect"]) / len(f1s["pyscenedetect"]), 4),
    }
    print(
        f"msearch / decode = {result['msearch_s'] / result['decode_s']:.2f}, "
        f"pyscenedetect / msearch = {result['pyscenedetect_s'] / result['msearch_s']:.2f}",
        file=sys.stderr,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
