"""PDF documents through the whole product: pages written in the tests (text, drawn
shapes, a scan that is only a picture, rotated, many), found by their words (a phrase
finds its page) and their looks, thumbnails per page, a changed PDF replacing its pages,
and hostile PDFs each ending with a code while the service keeps answering."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from support.app import api_client, index_through_api
from support.pdf_factory import PdfPage, chart_page, text_page, write_pdf

from msearch.config import Settings, load_settings
from msearch.demo import ShapeSpec, render
from msearch.embedding.infinity import InfinityEngine
from msearch.errors import CorruptMedia, EncryptedDocument
from msearch.media.detect import MediaType, detect_file
from msearch.media.documents import MAX_RENDER_SIDE, probe_document, read_pages

PHRASES = [
    "the lighthouse keeper counted seagulls",
    "quarterly revenue exceeded every forecast",
    "a recipe for saffron risotto",
    "maintenance schedule for the elevator",
    "the treaty was signed in Lisbon",
    "migration patterns of arctic terns",
    "the budget meeting moved to Thursday",
    "instructions for the espresso machine",
    "volcanic soil grows excellent grapes",
    "the orchestra tuned before the overture",
]


def _report(path: Path, phrases: list[str] = PHRASES) -> Path:
    pages = [text_page(f"Page {i + 1}", phrase) for i, phrase in enumerate(phrases)]
    return write_pdf(path, pages, title="Annual report", author="Ada Lovelace")


async def _search(client: httpx.AsyncClient, query: str, **options: Any) -> list[dict[str, Any]]:
    reply = await client.post("/api/v1/search/text", json={"query": query, **options})
    assert reply.status_code == 200, reply.text
    return list(reply.json()["results"])


def test_pages_are_read_in_order_with_their_text_and_bounded_pictures(tmp_path: Path) -> None:
    rotated = text_page("turned on its side")
    rotated.rotate = 90
    huge = PdfPage(width=14400, height=14400, boxes=[(0, 0, 14400, 14400, (0, 160, 0))])
    strip = PdfPage(width=14400, height=3)
    scan = PdfPage(picture=Image.new("RGB", (300, 400), (0, 0, 200)))
    path = write_pdf(tmp_path / "mixed.pdf", [text_page("first page"), rotated, huge, strip, scan])
    assert detect_file(path) is not None and detect_file(path).media_type == MediaType.DOCUMENT  # type: ignore[union-attr]
    info = probe_document(path)
    assert info.pages == 5 and info.title is None
    pages = list(read_pages(path, count=5, min_short=320))
    assert [p.number for p in pages] == [1, 2, 3, 4, 5]
    assert [p.text for p in pages] == ["first page", "turned on its side", "", "", ""]
    assert min(pages[0].image.size) == 320 and pages[0].image.height > pages[0].image.width
    assert pages[1].image.width > pages[1].image.height  # shown as it is turned
    assert max(pages[2].image.size) <= MAX_RENDER_SIDE and pages[2].image.getpixel((5, 5)) == (
        0,
        160,
        0,
    )
    assert max(pages[3].image.size) <= MAX_RENDER_SIDE  # a strip: bounded by its long side
    blue = pages[4].image.getpixel((160, 200))
    assert isinstance(blue, tuple) and blue[2] > 150 and blue[0] < 60  # the scan is seen


def test_locked_broken_and_empty_pdfs_are_refused_with_their_reason(tmp_path: Path) -> None:
    locked = write_pdf(tmp_path / "locked.pdf", [text_page("secret")], password="hunter2")
    with pytest.raises(EncryptedDocument):
        probe_document(locked)
    whole = _report(tmp_path / "whole.pdf").read_bytes()
    truncated = tmp_path / "truncated.pdf"
    truncated.write_bytes(whole[: len(whole) // 3])
    empty = write_pdf(tmp_path / "empty.pdf", [])
    for broken in (truncated, empty):
        with pytest.raises(CorruptMedia):
            probe_document(broken)


async def test_a_phrase_finds_its_page_and_the_page_shows_it(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine, media_dir: Path
) -> None:
    report = _report(media_dir / "report.pdf")
    photo = media_dir / "photo.png"
    Image.new("RGB", (64, 64), (200, 10, 10)).save(photo)
    async with api_client(make_settings(), tiny_engine) as client:
        files = await index_through_api(client, [report, photo])
        doc = files["report.pdf"]
        assert doc["status"] == "indexed", doc["error"]
        assert doc["media_type"] == "document" and doc["mime"] == "application/pdf"
        assert doc["document"] == {
            "pages": 10,
            "title": "Annual report",
            "author": "Ada Lovelace",
            "indexed_pages": 10,
            "partial": None,
            "pages_with_text": 10,
        }

        [hit] = await _search(client, "budget meeting moved", modalities=["text"])
        assert hit["file_id"] == doc["file_id"] and hit["kind"] == "text"
        assert hit["page"]["number"] == 7
        assert "<mark>budget</mark>" in hit["page"]["text"]
        assert hit["thumbnail_url"].endswith("?page=7")
        # a part of a word, and the media type filter
        part = await _search(client, "saffr", media_types=["document"])
        assert part[0]["page"]["number"] == 3 and "<mark>saffr</mark>on" in part[0]["page"]["text"]
        assert {h["media_type"] for h in part} == {"document"}
        assert not await _search(client, "saffr", media_types=["image"], modalities=["text"])
        # every engine together: the page's words and its looks fuse into one result
        both = await _search(client, "espresso machine")
        assert both[0]["page"]["number"] == 8 and both[0]["file_id"] == doc["file_id"]
        assert "<mark>espresso</mark> <mark>machine</mark>" in both[0]["page"]["text"]
        # a page found by its looks shows how its text begins
        seen = await _search(client, "a page", modalities=["visual"], media_types=["document"])
        assert seen and all(h["kind"] == "visual" and h["page"] for h in seen)
        assert all(h["page"]["text"].startswith(f"Page {h['page']['number']} ") for h in seen)

        # more like a page: the document's other pages are candidates, the page itself not
        like = await client.post(
            "/api/v1/search/image", json={"file_id": doc["file_id"], "page": 7, "limit": 20}
        )
        assert like.status_code == 200, like.text
        found = {
            (h["file_id"], (h.get("page") or {}).get("number")) for h in like.json()["results"]
        }
        assert (doc["file_id"], 7) not in found and len(found) == 10  # 9 pages and the photo
        grouped = await client.post(
            "/api/v1/search/image",
            json={"file_id": doc["file_id"], "page": 7, "group_by_file": True},
        )
        [same] = [h for h in grouped.json()["results"] if h["file_id"] == doc["file_id"]]
        assert same["page"]["number"] != 7
        assert 7 not in {p["number"] for p in same.get("more_pages", [])}
        for bad, status in (({"page": 11}, 404), ({"file_id": files["photo.png"]["file_id"]}, 400)):
            reply = await client.post(
                "/api/v1/search/image", json={"file_id": doc["file_id"], "page": 1, **bad}
            )
            assert reply.status_code == status, reply.text
        thumb = await client.get(hit["thumbnail_url"])
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert (
            await client.get(f"/api/v1/files/{doc['file_id']}/thumbnail?page=11")
        ).status_code == 404
        content = await client.get(f"/api/v1/files/{doc['file_id']}/content")
        assert content.headers["content-type"] == "application/pdf"
        assert content.content == report.read_bytes()

        # the PDF changes: its pages are replaced, none of the old ones is found
        _report(report, ["a single page about tulips"])
        files = await index_through_api(client, [report])
        assert files["report.pdf"]["document"]["pages"] == 1
        assert not await _search(client, "budget meeting moved", modalities=["text"])
        [tulips] = await _search(client, "tulips", modalities=["text"])
        assert tulips["page"]["number"] == 1
        seen = await _search(client, "a page", modalities=["visual"], media_types=["document"])
        assert [h["page"]["number"] for h in seen] == [1]
        health = (await client.get("/health")).json()
        assert health["counts"]["vectors"] == 2  # the photo and the one page


@pytest.fixture
def demo_settings(tmp_path: Path, media_dir: Path) -> Settings:
    return load_settings(
        None,
        data_dir=tmp_path / "data",
        embedding={"model": "demo", "device": "cpu"},
        api={"allowed_roots": [media_dir]},
    )


async def test_a_page_is_found_by_what_is_drawn_on_it(
    demo_settings: Settings, media_dir: Path
) -> None:
    """The shipped demo model sees pages: a drawn red square and a scanned blue circle
    are found by those words, among pages of text."""
    rng = random.Random(5)
    square = PdfPage(boxes=[(0, 0, 612, 792, (128, 128, 128)), (156, 246, 300, 300, (220, 20, 20))])
    circle = render(ShapeSpec("blue", "circle", "large", "center", "light grey"), 256, rng)
    pages = [
        text_page("minutes of the meeting"),
        square,
        chart_page("Quarterly sales", colour=(30, 160, 30)),
        PdfPage(picture=circle),
        text_page("appendix"),
    ]
    write_pdf(media_dir / "drawings.pdf", pages)
    async with api_client(demo_settings, None) as client:
        files = await index_through_api(client, [media_dir / "drawings.pdf"])
        assert files["drawings.pdf"]["status"] == "indexed"
        for query, page in (("a red square", 2), ("a blue circle", 4)):
            hits = await _search(client, query, modalities=["visual"])
            assert hits[0]["page"]["number"] == page, (query, hits)


async def test_hostile_pdfs_end_with_a_code_and_the_service_answers(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine, media_dir: Path
) -> None:
    whole = _report(media_dir / "fine.pdf").read_bytes()
    (media_dir / "truncated.pdf").write_bytes(whole[: len(whole) // 3])
    (media_dir / "zero.pdf").write_bytes(b"")
    (media_dir / "fake.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40)
    write_pdf(media_dir / "locked.pdf", [text_page("secret")], password="pw")
    write_pdf(media_dir / "nopages.pdf", [])
    write_pdf(media_dir / "thousand.pdf", [text_page(f"sheet {i:04d}") for i in range(1000)])
    write_pdf(media_dir / "giant.pdf", [PdfPage(width=14400, height=14400)] * 3)
    # a PDF that says it is a picture, and a picture that says it is a PDF
    Image.new("RGB", (32, 32), (0, 0, 255)).save(media_dir / "photo.pdf", "PNG")
    (media_dir / "scan.jpg").write_bytes(whole)
    paths = sorted(media_dir.iterdir())
    settings = make_settings()  # the default documents.max_pages: 500
    async with api_client(settings, tiny_engine) as client:
        files = await index_through_api(client, paths)
        outcome = {
            name: (f["status"], (f["error"] or {}).get("code"), f["media_type"])
            for name, f in files.items()
        }
        assert outcome == {
            "fake.pdf": ("failed", "corrupt_media", "document"),
            "fine.pdf": ("indexed", None, "document"),
            "giant.pdf": ("indexed", None, "document"),
            "locked.pdf": ("failed", "encrypted_document", "document"),
            "nopages.pdf": ("failed", "corrupt_media", "document"),
            "photo.pdf": ("indexed", None, "image"),
            "scan.jpg": ("indexed", None, "document"),
            "thousand.pdf": ("indexed", None, "document"),
            "truncated.pdf": ("failed", "corrupt_media", "document"),
            "zero.pdf": ("failed", "empty_file", None),
        }
        thousand = files["thousand.pdf"]["document"]
        assert thousand["pages"] == 1000 and thousand["indexed_pages"] == 500
        assert "500 of 1000" in thousand["partial"]
        [last] = await _search(client, "sheet 0499", modalities=["text"])
        assert last["page"]["number"] == 500
        assert not await _search(client, "sheet 0500", modalities=["text"])
        assert "password" in files["locked.pdf"]["error"]["message"]
        assert (await client.get("/health")).json()["status"] == "ok"
