"""WAV and FLAC headers read in Python say what ffprobe says of the same files."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from support.audio_factory import tone

from msearch.media.audio import sound_of
from msearch.media.ffprobe import ffprobe
from msearch.media.sound_headers import read_sound_header

TAGGED = (
    *("-metadata", "title=Ode to joy"),
    *("-metadata", "artist=Ünïcode Ärtist"),
    *("-metadata", "album=Odd"),  # odd lengths: RIFF pads to a word
    *("-metadata", "genre=Test"),
    *("-metadata", "date=2026"),
    *("-metadata", "comment=made by msearch's tests"),
)

CASES = {
    "s16-tagged.wav": dict(rate=44_100, codec=TAGGED),
    "s24-stereo.wav": dict(rate=48_000, channels=2, codec=("-c:a", "pcm_s24le")),
    "s32.wav": dict(rate=16_000, codec=("-c:a", "pcm_s32le")),
    "f32.wav": dict(rate=48_000, codec=("-c:a", "pcm_f32le")),
    "f64.wav": dict(rate=22_050, codec=("-c:a", "pcm_f64le")),
    "u8.wav": dict(rate=8_000, codec=("-c:a", "pcm_u8")),
    "alaw.wav": dict(rate=8_000, codec=("-c:a", "pcm_alaw")),
    "mulaw.wav": dict(rate=8_000, codec=("-c:a", "pcm_mulaw")),
    "six.wav": dict(rate=48_000, channels=6),  # WAVE_FORMAT_EXTENSIBLE
    "tagged.flac": dict(rate=44_100, channels=2, codec=(*TAGGED, "-metadata", "album_artist=Band")),
    "s24-mono.flac": dict(rate=96_000, codec=("-sample_fmt", "s32")),
    "narrow.flac": dict(rate=8_000, channels=6),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_header_says_what_ffprobe_says(tmp_path: Path, name: str) -> None:
    path = tone(tmp_path / name, 2.3, **CASES[name])  # type: ignore[arg-type]
    expected = sound_of(ffprobe(path))
    read = read_sound_header(path)
    assert read is not None and expected is not None
    assert read.duration == pytest.approx(expected.duration, abs=1e-6)
    assert (read.codec, read.sample_rate, read.channels) == (
        expected.codec,
        expected.sample_rate,
        expected.channels,
    )
    assert read.tags == expected.tags


def test_what_the_header_cannot_say_is_left_to_ffprobe(tmp_path: Path) -> None:
    with_id3 = tone(tmp_path / "id3.wav", 1.0)
    frame = b"\x00Tagged by ID3"  # a TIT2 (title) frame: ID3 is ffprobe's to read
    id3 = b"ID3\x03\x00\x00" + bytes([0, 0, 0, 10 + len(frame)])
    id3 += b"TIT2" + struct.pack(">I", len(frame)) + b"\x00\x00" + frame
    body = with_id3.read_bytes() + b"id3 " + struct.pack("<I", len(id3)) + id3
    with_id3.write_bytes(body[:4] + struct.pack("<I", len(body) - 8) + body[8:])
    adpcm = tone(tmp_path / "adpcm.wav", 1.0, codec=("-c:a", "adpcm_ms"))
    mp3 = tone(tmp_path / "song.mp3", 1.0)
    for path in (with_id3, adpcm, mp3):
        assert read_sound_header(path) is None, path.name
    headless = tmp_path / "headless.wav"
    headless.write_bytes(tone(tmp_path / "whole.wav", 1.0).read_bytes()[:30])
    assert read_sound_header(headless) is None
    assert read_sound_header(tmp_path / "missing.wav") is None


def test_a_truncated_wav_is_as_long_as_its_samples(tmp_path: Path) -> None:
    whole = tone(tmp_path / "whole.wav", 4.0, rate=8_000)  # 16-bit mono: 16 kB a second
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[:16_100])
    read, expected = read_sound_header(cut), sound_of(ffprobe(cut))
    assert read is not None and expected is not None
    assert read.duration == pytest.approx(expected.duration, abs=1e-6)
    assert read.duration == pytest.approx(1.0, abs=0.01)
