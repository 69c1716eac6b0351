"""PDFs written byte by byte for the tests: pages of text (Helvetica, a real text layer),
drawn shapes, a scanned-like page that is only a picture, rotated pages, a password."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

Colour = tuple[int, int, int]

# The standard security handler's padding (PDF 1.7, 7.6.3.3).
_PAD = bytes.fromhex("28bf4e5e4e758a4164004e56fffa01082e2e00b6d0683e802f0ca9fe6453697a")
_FILE_ID = hashlib.md5(b"msearch test pdf").digest()


@dataclass
class PdfPage:
    width: float = 612.0  # US Letter, in points
    height: float = 792.0
    # (x, y, font size, text), from the bottom left corner
    lines: list[tuple[float, float, float, str]] = field(default_factory=list)
    # (x, y, width, height, colour): filled rectangles
    boxes: list[tuple[float, float, float, float, Colour]] = field(default_factory=list)
    # a picture covering the whole page (a scan)
    picture: Image.Image | None = None
    rotate: int = 0


def text_page(*paragraphs: str, size: float = 14.0) -> PdfPage:
    """Lines of text from the top of a Letter page."""
    page = PdfPage()
    for i, text in enumerate(paragraphs):
        page.lines.append((72.0, 720.0 - i * size * 1.6, size, text))
    return page


def chart_page(title: str, colour: Colour = (220, 30, 30)) -> PdfPage:
    """A bar chart: a title over bars of one colour."""
    page = text_page(title, size=20)
    for i, height in enumerate((180, 320, 240, 420, 120)):
        page.boxes.append((100.0 + i * 85, 150.0, 60.0, float(height), colour))
    return page


def _rc4(key: bytes, data: bytes) -> bytes:
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    out, i, j = bytearray(), 0, 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        out.append(byte ^ s[(s[i] + s[j]) % 256])
    return bytes(out)


class _Encryption:
    """RC4 40-bit, revision 2: the oldest handler, which every reader still honours."""

    def __init__(self, password: str) -> None:
        padded = (password.encode("latin-1") + _PAD)[:32]
        self.owner = _rc4(hashlib.md5(padded).digest()[:5], padded)
        self.permissions = -4
        self.key = hashlib.md5(
            padded + self.owner + self.permissions.to_bytes(4, "little", signed=True) + _FILE_ID
        ).digest()[:5]
        self.user = _rc4(self.key, _PAD)

    def object_data(self, number: int, data: bytes) -> bytes:
        key = hashlib.md5(self.key + number.to_bytes(3, "little") + b"\x00\x00").digest()[:10]
        return _rc4(key, data)


def _escape(text: str) -> bytes:
    raw = text.encode("latin-1", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _content(page: PdfPage, has_picture: bool) -> bytes:
    ops: list[bytes] = []
    if has_picture:
        ops.append(f"q {page.width} 0 0 {page.height} 0 0 cm /Im0 Do Q".encode())
    for x, y, w, h, (r, g, b) in page.boxes:
        ops.append(f"{r / 255:.3f} {g / 255:.3f} {b / 255:.3f} rg {x} {y} {w} {h} re f".encode())
    for x, y, size, text in page.lines:
        ops.append(b"0 0 0 rg BT /F1 %g Tf %g %g Td (" % (size, x, y) + _escape(text) + b") Tj ET")
    return b"\n".join(ops)


def write_pdf(
    path: Path,
    pages: list[PdfPage],
    *,
    title: str | None = None,
    author: str | None = None,
    password: str | None = None,
) -> Path:
    crypt = _Encryption(password) if password is not None else None
    objects: dict[int, bytes] = {}

    def stream(number: int, data: bytes, extra: bytes = b"") -> bytes:
        if crypt is not None:
            data = crypt.object_data(number, data)
        return b"<< /Length %d %s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"

    objects[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[3] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    kids: list[int] = []
    number = 4
    for page in pages:
        page_no, content_no, picture_no = number, number + 1, number + 2
        number += 3
        kids.append(page_no)
        resources = b"/Font << /F1 3 0 R >>"
        if page.picture is not None:
            jpeg = io.BytesIO()
            page.picture.convert("RGB").save(jpeg, "JPEG", quality=85)
            objects[picture_no] = stream(
                picture_no,
                jpeg.getvalue(),
                b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB "
                b"/BitsPerComponent 8 /Filter /DCTDecode" % page.picture.size,
            )
            resources += b" /XObject << /Im0 %d 0 R >>" % picture_no
        objects[content_no] = stream(content_no, _content(page, page.picture is not None))
        objects[page_no] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %g %g] /Rotate %d "
            b"/Resources << %s >> /Contents %d 0 R >>"
            % (page.width, page.height, page.rotate, resources, content_no)
        )
    objects[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    trailer = b"/Root 1 0 R"
    if crypt is not None:
        objects[number] = b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P %d >>" % (
            crypt.owner.hex().encode(),
            crypt.user.hex().encode(),
            crypt.permissions,
        )
        trailer += b" /Encrypt %d 0 R" % number
        number += 1
    elif title is not None or author is not None:
        info = b"<<"
        if title is not None:
            info += b" /Title (" + _escape(title) + b")"
        if author is not None:
            info += b" /Author (" + _escape(author) + b")"
        objects[number] = info + b" >>"
        trailer += b" /Info %d 0 R" % number
        number += 1
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = [0] * number
    for n in sorted(objects):
        offsets[n] = len(out)
        out += b"%d 0 obj\n" % n + objects[n] + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % number
    for n in range(1, number):
        out += b"%010d 00000 n \n" % offsets[n] if n in objects else b"0000000000 65535 f \n"
    out += b"trailer\n<< /Size %d %s /ID [<%s> <%s>] >>\nstartxref\n%d\n%%%%EOF\n" % (
        number,
        trailer,
        _FILE_ID.hex().encode(),
        _FILE_ID.hex().encode(),
        xref,
    )
    path.write_bytes(bytes(out))
    return path
