"""PDF documents, read with pypdfium2 (PDFium in the wheel: no system dependency): what a
document is (pages, title, author), and each page as a picture and its text layer."""

from __future__ import annotations

import threading
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image

from msearch.errors import CorruptMedia, EncryptedDocument

# PDFium is not thread-safe, not even across documents: every call into it holds this.
# Pages render in milliseconds, so documents indexed side by side barely wait.
PDFIUM_LOCK = threading.Lock()

# A page's text beyond this is not indexed (a page of a PDF bomb can hold megabytes).
MAX_PAGE_CHARS = 20_000
# A page is never rendered larger than this many pixels on its long side, whatever size
# its MediaBox claims (PDF allows 200 inches, times a UserUnit).
MAX_RENDER_SIDE = 2048


@dataclass(frozen=True)
class DocumentInfo:
    pages: int
    title: str | None
    author: str | None
    # the first page's size in points (1/72 inch), as it is shown (rotation applied)
    width: float
    height: float

    def as_dict(self) -> dict[str, Any]:
        return {"pages": self.pages, "title": self.title, "author": self.author}


@dataclass
class Page:
    index: int  # 0-based; people count pages from 1
    image: Image.Image
    text: str

    @property
    def number(self) -> int:
        return self.index + 1


def _mentions(path: Path, word: bytes, chunk: int = 1 << 20) -> bool:
    """Does the file hold ``word`` anywhere (read a chunk at a time)?"""
    with path.open("rb") as fh:
        tail = b""
        while block := fh.read(chunk):
            if word in tail + block:
                return True
            tail = block[-len(word) :]
    return False


@contextmanager
def _opened(path: Path) -> Generator[pdfium.PdfDocument, None, None]:
    with PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(str(path))
        except pdfium.PdfiumError as exc:
            failure = exc
        else:
            failure = None
    if failure is not None:
        # PDFium's last error is left over from an earlier document when a load fails
        # without setting it: a password is the reason only where the file has a lock
        if failure.err_code == pdfium_c.FPDF_ERR_PASSWORD and _mentions(path, b"/Encrypt"):
            raise EncryptedDocument(
                "the PDF is protected by a password; msearch cannot read its pages"
            ) from failure
        raise CorruptMedia("not a PDF msearch can read (PDFium cannot load it)") from failure
    try:
        yield pdf
    finally:
        with PDFIUM_LOCK:
            pdf.close()


def _meta(value: str | None) -> str | None:
    value = (value or "").replace("\x00", "").strip()
    return value[:500] or None


def probe_document(path: Path) -> DocumentInfo:
    """Pages, title and author; a PDF without a page is not a document to index."""
    with _opened(path) as pdf, PDFIUM_LOCK:
        count = len(pdf)
        if count == 0:
            raise CorruptMedia("the PDF has no pages", code="empty_document")
        meta = pdf.get_metadata_dict(skip_empty=True)
        page = pdf[0]
        try:
            width, height = page.get_size()
        finally:
            page.close()
    return DocumentInfo(count, _meta(meta.get("Title")), _meta(meta.get("Author")), width, height)


def _scale(width: float, height: float, min_short: int, max_long: int) -> float:
    """Render so the short side has ``min_short`` pixels, the long side at most
    ``max_long`` (an extreme strip of a page gets its long side bounded instead)."""
    short, long = max(1.0, min(width, height)), max(1.0, max(width, height))
    return min(min_short / short, max_long / long)


def _page(pdf: pdfium.PdfDocument, index: int, min_short: int, max_long: int) -> Page:
    page = pdf[index]
    try:
        width, height = page.get_size()
        bitmap = page.render(scale=_scale(width, height, min_short, max_long), may_draw_forms=False)
        try:
            image = bitmap.to_pil().convert("RGB")
        finally:
            bitmap.close()
        textpage = page.get_textpage()
        try:
            text = textpage.get_text_range(count=min(textpage.count_chars(), MAX_PAGE_CHARS))
        finally:
            textpage.close()
    finally:
        page.close()
    return Page(index, image, " ".join(text.replace("\x00", "").split()))


def read_pages(
    path: Path, *, count: int, min_short: int, max_long: int = MAX_RENDER_SIDE
) -> Generator[Page, None, None]:
    """The first ``count`` pages in order, each rendered and its text read; PDFium is held
    for one page at a time, so other documents interleave."""
    with _opened(path) as pdf:
        for index in range(count):
            with PDFIUM_LOCK:
                try:
                    page = _page(pdf, index, min_short, max(min_short, max_long))
                except pdfium.PdfiumError as exc:
                    raise CorruptMedia(f"page {index + 1} cannot be read ({exc})") from exc
            yield page


def render_page(path: Path, index: int, *, min_short: int) -> Image.Image:
    """One page as a picture (a thumbnail made again)."""
    with _opened(path) as pdf, PDFIUM_LOCK:
        if not 0 <= index < len(pdf):
            raise CorruptMedia(f"the PDF has no page {index + 1}")
        return _page(pdf, index, min_short, MAX_RENDER_SIDE).image
