"""File type detection from magic bytes; extensions are never trusted."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class MediaType(StrEnum):
    IMAGE = "image"
    VIDEO = "video"


@dataclass(frozen=True)
class DetectedType:
    media_type: MediaType
    mime: str


_HEAD_BYTES = 64
# ISO base media files whose major brand says "still image": the iPhone's HEIC, and AVIF.
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}
_HEIF_GENERIC = {b"mif1", b"msf1"}


def detect_bytes(head: bytes) -> DetectedType | None:
    """The media type of a file from its first bytes, or None when it is not media we know."""
    if head.startswith(b"\xff\xd8\xff"):
        return DetectedType(MediaType.IMAGE, "image/jpeg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return DetectedType(MediaType.IMAGE, "image/png")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return DetectedType(MediaType.IMAGE, "image/gif")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return DetectedType(MediaType.IMAGE, "image/webp")
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return DetectedType(MediaType.VIDEO, "video/x-msvideo")
    if head[:2] == b"BM" and len(head) >= 26:
        return DetectedType(MediaType.IMAGE, "image/bmp")
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return DetectedType(MediaType.IMAGE, "image/tiff")
    if head[:4] == b"\x1a\x45\xdf\xa3":
        mime = "video/webm" if b"webm" in head else "video/x-matroska"
        return DetectedType(MediaType.VIDEO, mime)
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        box_end = min(len(head), int.from_bytes(head[:4], "big"))
        compatible = {head[i : i + 4] for i in range(16, box_end - 3, 4)}
        if brand in _AVIF_BRANDS or (brand in _HEIF_GENERIC and compatible & _AVIF_BRANDS):
            return DetectedType(MediaType.IMAGE, "image/avif")
        if brand in _HEIC_BRANDS or brand in _HEIF_GENERIC:
            return DetectedType(MediaType.IMAGE, "image/heic")
        if brand == b"qt  ":
            return DetectedType(MediaType.VIDEO, "video/quicktime")
        return DetectedType(MediaType.VIDEO, "video/mp4")
    return None


def detect_file(path: Path) -> DetectedType | None:
    with path.open("rb") as fh:
        return detect_bytes(fh.read(_HEAD_BYTES))
