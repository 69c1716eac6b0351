"""WAV and FLAC facts read from their headers in Python, as ffprobe reports them.

A sound file was probed by ffprobe and then decoded by FFmpeg: two process starts of
~45 ms of CPU each (Debian's FFmpeg loads 215 shared libraries), which for a folder of
short sounds cost as much as the model. The two formats most sound libraries and
recorders write have plain headers: their codec, rate, channels, length and tags are read
here with bounded reads and no C code. Anything unusual (an extension this module does not
know, an ID3 chunk, a length the header does not give) returns None, and ffprobe answers.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import IO

from msearch.media.audio import TAGS, SoundInfo

_MAX_CHUNKS = 64
_MAX_TAG_BYTES = 1 << 20
_UNKNOWN_SIZE = 0xFFFFFFFF
# ffmpeg's names for the RIFF INFO tags msearch shows (libavformat's ff_riff_info_conv)
_RIFF_INFO = {
    b"INAM": "title",
    b"IART": "artist",
    b"IPRD": "album",
    b"IGNR": "genre",
    b"ICRD": "date",
    b"ICMT": "comment",
}
# and for Vorbis comments (ff_vorbiscomment_metadata_conv); other keys are kept lowercased
_VORBIS = {"albumartist": "album_artist", "description": "comment"}
_PCM, _FLOAT, _ALAW, _MULAW, _EXTENSIBLE = 1, 3, 6, 7, 0xFFFE


def read_sound_header(path: Path) -> SoundInfo | None:
    """The facts of a WAV or FLAC file, or None when ffprobe should be asked."""
    try:
        with path.open("rb") as file:
            head = file.read(12)
            if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
                return _wav(file)
            if head[:4] == b"fLaC":
                file.seek(4)
                return _flac(file)
    except (OSError, struct.error, ValueError):
        return None
    return None


def _wav(file: IO[bytes]) -> SoundInfo | None:
    """Every chunk is read, those after the samples too: writers put tags there, as
    FFmpeg's demuxer knows."""
    fmt: tuple[int, int, int, int, int] | None = None  # codec tag, channels, rate, align, bits
    data: tuple[int, int] | None = None  # where the samples start, their length
    tags: dict[str, str] = {}
    size = os.fstat(file.fileno()).st_size
    for _ in range(_MAX_CHUNKS):
        header = file.read(8)
        if len(header) < 8:
            break
        chunk, length = header[:4], struct.unpack("<I", header[4:])[0]
        start = file.tell()
        if chunk == b"fmt ":
            fmt = _wav_format(file.read(min(length, 64)))
            if fmt is None:
                return None
        elif chunk == b"LIST" and length <= _MAX_TAG_BYTES:
            body = file.read(length)
            if body[:4] == b"INFO":
                tags.update(_riff_info(body[4:]))
        elif chunk.lower().startswith(b"id3"):
            return None  # ffprobe reads ID3 tags inside a WAV
        elif chunk == b"data":
            if length in (0, _UNKNOWN_SIZE):
                return None
            data = (start, length)
        if start + length >= size:
            break
        file.seek(start + length + (length & 1))  # chunks are word-aligned
    else:
        return None  # more chunks than a sound file has
    if fmt is None or data is None:
        return None
    tag, channels, rate, align, bits = fmt
    codec = _wav_codec(tag, bits)
    if codec is None or not rate or not channels or not align:
        return None
    samples = min(data[1], size - data[0]) // align
    return SoundInfo(samples / rate, codec, rate, channels, _shown(tags))


def _wav_format(body: bytes) -> tuple[int, int, int, int, int] | None:
    if len(body) < 16:
        return None
    tag, channels, rate, _, align, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == _EXTENSIBLE:
        if len(body) < 40:
            return None
        valid_bits = struct.unpack("<H", body[18:20])[0]
        if valid_bits not in (0, bits):
            return None  # e.g. 20 bits in 24: ffprobe names those its own way
        tag = struct.unpack("<H", body[24:26])[0]  # the sub-format GUID's first field
    return tag, channels, rate, align, bits


def _wav_codec(tag: int, bits: int) -> str | None:
    if tag == _PCM:
        return {8: "pcm_u8", 16: "pcm_s16le", 24: "pcm_s24le", 32: "pcm_s32le"}.get(bits)
    if tag == _FLOAT:
        return {32: "pcm_f32le", 64: "pcm_f64le"}.get(bits)
    if tag == _ALAW and bits == 8:
        return "pcm_alaw"
    if tag == _MULAW and bits == 8:
        return "pcm_mulaw"
    return None


def _riff_info(body: bytes) -> dict[str, str]:
    tags: dict[str, str] = {}
    at = 0
    while at + 8 <= len(body):
        key, length = body[at : at + 4], struct.unpack("<I", body[at + 4 : at + 8])[0]
        value = body[at + 8 : at + 8 + length]
        if key in _RIFF_INFO:
            text = value.split(b"\0", 1)[0].decode("utf-8", errors="replace").strip()
            if text:
                tags[_RIFF_INFO[key]] = text
        at += 8 + length + (length & 1)
    return tags


def _flac(file: IO[bytes]) -> SoundInfo | None:
    info: tuple[int, int, int] | None = None  # rate, channels, samples
    tags: dict[str, str] = {}
    for _ in range(_MAX_CHUNKS):
        header = file.read(4)
        if len(header) < 4:
            return None
        last, kind = header[0] & 0x80, header[0] & 0x7F
        length = int.from_bytes(header[1:], "big")
        start = file.tell()
        if kind == 0:  # STREAMINFO
            body = file.read(length)
            if len(body) < 18:
                return None
            packed = int.from_bytes(body[10:18], "big")
            rate = packed >> 44
            channels = ((packed >> 41) & 0x7) + 1
            samples = packed & 0xFFFFFFFFF
            info = (rate, channels, samples)
        elif kind == 4 and length <= _MAX_TAG_BYTES:  # VORBIS_COMMENT
            tags.update(_vorbis_comments(file.read(length)))
        elif kind == 127:
            return None  # invalid block type
        if last:
            break
        file.seek(start + length)
    if info is None:
        return None
    rate, channels, samples = info
    if not rate or not samples:
        return None  # a length the header does not give: ffprobe estimates it
    return SoundInfo(samples / rate, "flac", rate, channels, _shown(tags))


def _vorbis_comments(body: bytes) -> dict[str, str]:
    tags: dict[str, str] = {}
    vendor = struct.unpack("<I", body[:4])[0]
    at = 4 + vendor
    count = struct.unpack("<I", body[at : at + 4])[0]
    at += 4
    for _ in range(min(count, 4096)):
        length = struct.unpack("<I", body[at : at + 4])[0]
        entry = body[at + 4 : at + 4 + length].decode("utf-8", errors="replace")
        at += 4 + length
        key, sep, value = entry.partition("=")
        if not sep:
            continue
        name = key.lower()
        name = _VORBIS.get(name, name)
        tags[name] = f"{tags[name]};{value}" if name in tags else value
    return tags


def _shown(tags: dict[str, str]) -> dict[str, str]:
    return {key: tags[key][:200] for key in TAGS if tags.get(key)}
