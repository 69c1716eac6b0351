"""File type detection from magic bytes; extensions are never trusted."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from msearch.errors import MSearchError
from msearch.media.ffprobe import ffprobe


class MediaType(StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    DOCUMENT = "document"


@dataclass(frozen=True)
class DetectedType:
    media_type: MediaType
    mime: str


# PDF readers look for the header in the first kilobyte (some writers put bytes before it).
_HEAD_BYTES = 1024
# ISO base media files whose major brand says "still image": the iPhone's HEIC, and AVIF.
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}
_HEIF_GENERIC = {b"mif1", b"msf1"}
# ISO base media files that are sound alone (iTunes' M4A, audiobooks, protected M4P).
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A "}


def _mpeg_audio_frame(head: bytes) -> str | None:
    """An MPEG audio frame header (an MP3 without ID3 tag) or an AAC ADTS one."""
    if len(head) < 2 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    layer = (head[1] >> 1) & 0b11
    if layer == 0b00:
        return "audio/aac" if head[1] & 0xF6 == 0xF0 else None  # ADTS
    return "audio/mpeg"


def _ogg_kind(head: bytes) -> DetectedType:
    """An Ogg stream's first packet names its codec: Theora is video, the rest sound."""
    if b"\x80theora" in head:
        return DetectedType(MediaType.VIDEO, "video/ogg")
    if b"OpusHead" in head:
        return DetectedType(MediaType.AUDIO, "audio/opus")
    return DetectedType(MediaType.AUDIO, "audio/ogg")


def detect_bytes(head: bytes) -> DetectedType | None:
    """The media type of a file from its first bytes, or None when it is not media we know."""
    if head.startswith(b"%PDF-"):
        return DetectedType(MediaType.DOCUMENT, "application/pdf")
    if head.startswith(b"\xff\xd8\xff"):
        return DetectedType(MediaType.IMAGE, "image/jpeg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return DetectedType(MediaType.IMAGE, "image/png")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return DetectedType(MediaType.IMAGE, "image/gif")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return DetectedType(MediaType.IMAGE, "image/webp")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return DetectedType(MediaType.AUDIO, "audio/wav")
    if head[:4] == b"fLaC":
        return DetectedType(MediaType.AUDIO, "audio/flac")
    if head[:3] == b"ID3":
        return DetectedType(MediaType.AUDIO, "audio/mpeg")
    if head[:4] == b"OggS":
        return _ogg_kind(head)
    if (mime := _mpeg_audio_frame(head)) is not None:
        return DetectedType(MediaType.AUDIO, mime)
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
        if brand in _AUDIO_BRANDS:
            return DetectedType(MediaType.AUDIO, "audio/mp4")
        if brand == b"qt  ":
            return DetectedType(MediaType.VIDEO, "video/quicktime")
        return DetectedType(MediaType.VIDEO, "video/mp4")
    if b"%PDF-" in head:
        return DetectedType(MediaType.DOCUMENT, "application/pdf")
    return None


def detect_file(path: Path) -> DetectedType | None:
    with path.open("rb") as fh:
        return detect_bytes(fh.read(_HEAD_BYTES))


# Containers whose header cannot say whether they hold pictures or sound alone: an .m4a
# written with the generic "isom" brand, the sound of a film saved as WebM or Matroska.
_SOUND_ONLY_MIMES = {
    "video/mp4": "audio/mp4",
    "video/quicktime": "audio/mp4",
    "video/webm": "audio/webm",
    "video/x-matroska": "audio/x-matroska",
}


def settle_container(
    detected: DetectedType, path: Path, *, pass_fds: tuple[int, ...] = ()
) -> DetectedType:
    """What a video container's streams say it is: sound when it has an audio stream and
    no moving picture (a cover image does not count). A file ffprobe cannot read stays a
    video, for the video decoder to explain."""
    sound_mime = _SOUND_ONLY_MIMES.get(detected.mime)
    if detected.media_type != MediaType.VIDEO or sound_mime is None:
        return detected
    try:
        streams = ffprobe(path, pass_fds=pass_fds).get("streams", [])
    except MSearchError:
        return detected
    moving = [
        s
        for s in streams
        if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
    ]
    if moving or not any(s.get("codec_type") == "audio" for s in streams):
        return detected
    return DetectedType(MediaType.AUDIO, sound_mime)
