from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.media_factory import (
    jpeg_with_exif,
    noise,
    phone_photo,
    png_bomb,
    write_all_formats,
    write_broken,
)

from msearch.errors import CorruptMedia, DecompressionBomb, UnsupportedMedia
from msearch.media.detect import MediaType, detect_bytes, detect_file
from msearch.media.fingerprint import content_fingerprint
from msearch.media.images import decode_image
from msearch.media.scan import expand_paths, iter_media_files

LIMITS = {"max_pixels": 50_000_000}


def test_type_comes_from_content_not_extension(tmp_path: Path) -> None:
    disguised = tmp_path / "holiday.mp4"
    noise(20, 20).save(disguised, "PNG")
    assert detect_file(disguised) is not None
    assert detect_file(disguised).media_type == MediaType.IMAGE  # type: ignore[union-attr]
    text = tmp_path / "x.jpg"
    text.write_text("hello")
    assert detect_file(text) is None
    assert detect_bytes(b"\x00\x00\x00\x18ftypmp42").media_type == MediaType.VIDEO  # type: ignore[union-attr]
    assert detect_bytes(b"\x1a\x45\xdf\xa3....webm").mime == "video/webm"  # type: ignore[union-attr]


def test_every_supported_format_and_mode_decodes_to_rgb(tmp_path: Path) -> None:
    for name, path in write_all_formats(tmp_path).items():
        decoded = decode_image(path, **LIMITS)
        assert decoded.image.mode == "RGB", name
        assert (decoded.width, decoded.height) == (96, 64), name


def test_alpha_is_composited_on_white(tmp_path: Path) -> None:
    clear = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    path = tmp_path / "clear.png"
    clear.save(path)
    assert decode_image(path, **LIMITS).image.getpixel((5, 5)) == (255, 255, 255)


def test_sixteen_bit_range_is_scaled_not_clipped(tmp_path: Path) -> None:
    deep = (np.linspace(1000, 3000, 100).reshape(10, 10)).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(deep).save(path)
    pixels = np.asarray(decode_image(path, **LIMITS).image)
    assert pixels.min() == 0 and pixels.max() == 255


def test_exif_orientation_taken_at_and_camera(tmp_path: Path) -> None:
    # Stored landscape 120x80 with orientation 6 (rotate 90° CW): displayed portrait.
    stored = Image.new("RGB", (120, 80), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 20, 80))  # red band on the stored left edge
    path = jpeg_with_exif(
        tmp_path / "rot.jpg",
        stored,
        orientation=6,
        taken="2021:07:04 18:30:00",
        make="Canon",
        model="Canon EOS R5",
    )
    decoded = decode_image(path, **LIMITS)
    assert (decoded.width, decoded.height) == (80, 120)
    assert decoded.image.size == (80, 120)
    red, _green, blue = decoded.image.getpixel((40, 5))  # left edge is now on top
    assert red > 200 and blue < 60
    assert decoded.taken_at is not None and decoded.taken_at.isoformat().startswith(
        "2021-07-04T18:30:00"
    )
    assert decoded.camera == "Canon EOS R5"


@pytest.mark.parametrize(("fmt", "mime"), [("HEIF", "image/heic"), ("AVIF", "image/avif")])
def test_phone_formats_decode_with_orientation_and_exif(
    tmp_path: Path, fmt: str, mime: str
) -> None:
    """HEIC is the iPhone's default; both it and AVIF were skipped without a word."""
    path = phone_photo(tmp_path / f"IMG_0001.{fmt.lower()}", fmt)
    detected = detect_file(path)
    assert detected is not None and (detected.media_type, detected.mime) == (MediaType.IMAGE, mime)
    decoded = decode_image(path, **LIMITS)
    assert (decoded.width, decoded.height) == (80, 120)  # displayed upright
    assert decoded.image.mode == "RGB" and decoded.image.width < decoded.image.height
    assert decoded.taken_at is not None and decoded.taken_at.isoformat().startswith(
        "2024-05-06T07:08:09"
    )
    assert decoded.camera == "Apple iPhone 15"


def test_big_images_decode_only_as_large_as_needed(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    noise(4000, 3000).save(path, "JPEG")
    decoded = decode_image(path, max_pixels=50_000_000, min_short=224, min_long=320)
    assert decoded.image.size == (320, 240)  # long side bound: the thumbnail needs 320
    assert (decoded.width, decoded.height) == (4000, 3000)
    wide = tmp_path / "wide.png"
    noise(1920, 1080).save(wide)
    assert decode_image(wide, max_pixels=50_000_000).image.size == (398, 224)  # short bound
    small = tmp_path / "small.png"
    noise(100, 80).save(small)
    assert decode_image(small, max_pixels=50_000_000).image.size == (100, 80)  # no upscale


def test_broken_files_raise_typed_errors(tmp_path: Path) -> None:
    broken = write_broken(tmp_path)
    with pytest.raises(CorruptMedia):
        decode_image(broken["truncated"], **LIMITS)
    with pytest.raises(UnsupportedMedia):
        decode_image(broken["text"], **LIMITS)
    with pytest.raises(DecompressionBomb, match="pixels"):
        decode_image(broken["bomb"], **LIMITS)


def test_a_png_with_corrupt_pixel_data_fails_instead_of_decoding_half(tmp_path: Path) -> None:
    """Reading a PNG's EXIF loads its pixels and swallowed the error: the corrupt file was
    then indexed as whatever half of it had decoded."""
    path = tmp_path / "half.png"
    noise(48, 48, seed=7).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] + bytes(len(data) - len(data) // 2))
    with pytest.raises(CorruptMedia, match="truncated or corrupt"):
        decode_image(path, max_pixels=10**8, min_short=8, min_long=8)


def test_pixel_limit_checked_before_decoding(tmp_path: Path) -> None:
    # 900 megapixels claimed in a file of a few hundred KB: rejected from the header alone.
    bomb = png_bomb(tmp_path / "b.png", 30_000, 30_000)
    assert bomb.stat().st_size < 2_000_000
    with pytest.raises(DecompressionBomb):
        decode_image(bomb, max_pixels=100_000_000)


def test_fingerprint_follows_content_not_name(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.jpg", tmp_path / "b.jpg", tmp_path / "c.jpg"
    noise(50, 50, seed=1).save(a, "JPEG")
    b.write_bytes(a.read_bytes())
    noise(50, 50, seed=2).save(c, "JPEG")
    assert content_fingerprint(a) == content_fingerprint(b) != content_fingerprint(c)


def test_folder_scan_skips_ignored_and_unknown(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    for name in ("a.jpg", "sub/b.PNG", ".hidden/c.jpg", ".d.jpg", "e.jpg.part", "f.txt"):
        (tmp_path / name).write_bytes(b"x")
    exts = [".jpg", ".png"]
    ignore = [".*", "*.part"]
    found = [p.relative_to(tmp_path).as_posix() for p in iter_media_files(tmp_path, exts, ignore)]
    assert found == ["a.jpg", "sub/b.PNG"]
    # folders expand to every file not ignored: the pipeline skips the others, saying why
    explicit = tmp_path / "f.txt"
    expanded = [p.relative_to(tmp_path).as_posix() for p in expand_paths([tmp_path], ignore)]
    assert expanded == ["a.jpg", "f.txt", "sub/b.PNG"]
    assert expand_paths([explicit, tmp_path], ignore)[0] == explicit
