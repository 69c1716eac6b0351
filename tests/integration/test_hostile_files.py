"""A folder of hostile files through a real ``msearch serve``: every file ends indexed,
failed or skipped with a code, the server answers throughout, and its peak memory stays
bounded (recorded under build/test-artifacts/)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from support.cli_helpers import cli_env, start_server, stop_server
from support.media_factory import noise, png_bomb, write_broken
from support.paths import ROOT
from support.pdf_factory import PdfPage, text_page, write_pdf
from support.video_factory import audio_only

pytestmark = pytest.mark.slow
PEAK_RSS_LIMIT_MB = 1024  # measured 663 MB with the tiny model and the PDFs (3,000 pages)


def _hostile_corpus(folder: Path) -> dict[str, tuple[str, ...]]:
    """{file name: the outcomes it may end with}."""
    broken = write_broken(folder)
    expected: dict[str, tuple[str, ...]] = {
        broken["truncated"].name: ("failed:corrupt_media",),
        broken["empty"].name: ("failed:empty_file",),
        broken["text"].name: ("skipped:unsupported_media",),  # text named .png
        broken["bomb"].name: ("failed:too_many_pixels",),
    }
    png_bomb(folder / "wide-bomb.gif", 65_000, 65_000)  # a PNG named .gif, the size claimed
    expected["wide-bomb.gif"] = ("failed:too_many_pixels",)
    frames = [Image.new("P", (8, 8), i % 256) for i in range(5000)]
    frames[0].save(folder / "5000-frames.gif", save_all=True, append_images=frames[1:])
    expected["5000-frames.gif"] = ("indexed",)
    pages = [noise(64, 48, seed=i) for i in range(5)]
    pages[0].save(folder / "pages.tiff", save_all=True, append_images=pages[1:])
    expected["pages.tiff"] = ("indexed",)
    deep = np.linspace(0, 65535, 64 * 48).reshape(48, 64).astype(np.uint16)
    Image.fromarray(deep).save(folder / "deep.png")
    expected["deep.png"] = ("indexed",)
    noise(64, 48, seed=2).convert("CMYK").save(folder / "print.jpg", "JPEG")
    expected["print.jpg"] = ("indexed",)
    good = folder / "bad-exif.jpg"
    noise(64, 48, seed=3).save(good, "JPEG")
    data = good.read_bytes()  # an APP1 Exif segment of garbage right after the SOI marker
    junk = b"Exif\x00\x00MM\x00*\x00\x00\xff\xff\xff\xf0" + os.urandom(64)
    good.write_bytes(data[:2] + b"\xff\xe1" + (len(junk) + 2).to_bytes(2, "big") + junk + data[2:])
    expected["bad-exif.jpg"] = ("indexed",)
    os.mkfifo(folder / "pipe.jpg")
    expected["pipe.jpg"] = ("skipped:unsupported_media",)
    locked = folder / "locked.jpg"
    noise(40, 40, seed=4).save(locked, "JPEG")
    locked.chmod(0)
    # root reads it anyway
    expected["locked.jpg"] = ("indexed",) if os.geteuid() == 0 else ("failed:file_unreadable",)
    (folder / "loop.jpg").symlink_to("loop.jpg")  # a link to itself: never followed
    audio_only(folder / "sound-only.mp4")
    # an audio file; with the defaults here neither a sound model nor a speech model is
    # available (neither can be downloaded), so it fails with that code, nothing else
    expected["sound-only.mp4"] = ("failed:sound_model_unavailable",)
    (folder / "random.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(200_000))
    expected["random.mp4"] = ("failed:corrupt_media", "skipped:unsupported_media")
    (folder / "random-bytes.mp4").write_bytes(os.urandom(100_000))
    expected["random-bytes.mp4"] = ("skipped:unsupported_media",)
    # documents: pages 200 inches wide, a PDF longer than documents.max_pages (its first
    # 500 pages are indexed), a password
    write_pdf(folder / "giant-pages.pdf", [PdfPage(width=14400, height=14400)] * 3)
    expected["giant-pages.pdf"] = ("indexed",)
    write_pdf(folder / "3000-pages.pdf", [text_page(f"sheet {i:04d}") for i in range(3000)])
    expected["3000-pages.pdf"] = ("indexed",)
    write_pdf(folder / "locked.pdf", [text_page("secret")], password="pw")
    expected["locked.pdf"] = ("failed:encrypted_document",)
    (folder / "readme.txt").write_text("not media")
    expected["readme.txt"] = ("skipped:unsupported_type",)
    for i in range(10):
        noise(80, 60, seed=100 + i).save(folder / f"good-{i}.jpg", "JPEG")
        expected[f"good-{i}.jpg"] = ("indexed",)
    return expected


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc")


def test_a_folder_of_hostile_files(tmp_path: Path, tiny_clip_dir: Path) -> None:
    library = tmp_path / "hostile"
    library.mkdir()
    expected = _hostile_corpus(library)
    env = cli_env(
        tmp_path / "data", tiny_clip_dir, MSEARCH_API__ALLOWED_ROOTS=json.dumps([str(tmp_path)])
    )
    proc, url = start_server(env)
    answers: list[int] = []
    stop = threading.Event()

    def keep_asking() -> None:  # the server answers throughout
        while not stop.is_set():
            for method, path, body in (
                ("GET", "/health", None),
                ("POST", "/api/v1/search/text", {"query": "x"}),
            ):
                answers.append(httpx.request(method, url + path, json=body, timeout=30).status_code)
            time.sleep(0.05)

    asker = threading.Thread(target=keep_asking)
    asker.start()
    try:
        folder = httpx.post(f"{url}/api/v1/folders", json={"path": str(library)}, timeout=30)
        assert folder.status_code == 201, folder.text
        outcomes: dict[str, str] = {}
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            files = httpx.get(f"{url}/api/v1/files", params={"limit": 1000}, timeout=30).json()
            outcomes = {
                Path(f["path"]).name: f["status"]
                + (f":{f['error']['code']}" if f["error"] and f["status"] != "indexed" else "")
                for f in files["files"]
            }
            if len(outcomes) == len(expected) and not any(
                o.startswith(("queued", "processing")) for o in outcomes.values()
            ):
                break
            time.sleep(0.5)
        peak = _peak_rss_mb(proc.pid)
    finally:
        stop.set()
        asker.join(timeout=60)
        (library / "locked.jpg").chmod(0o644)
        stop_server(proc)
    wrong = {
        name: (outcomes.get(name), allowed)
        for name, allowed in expected.items()
        if outcomes.get(name) not in allowed
    }
    assert not wrong, wrong
    assert "loop.jpg" not in outcomes  # links are never followed, nor recorded
    assert answers and set(answers) <= {200}, sorted(set(answers))
    artifacts = ROOT / "build" / "test-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "peak_rss_mb": round(peak, 1),
        "files": len(expected),
        "requests_answered": len(answers),
        "outcomes": outcomes,
    }
    (artifacts / "hostile-corpus.json").write_text(json.dumps(record, indent=2))
    assert peak < PEAK_RSS_LIMIT_MB, record
