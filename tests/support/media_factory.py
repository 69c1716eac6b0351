"""Generates test media: every image mode and container we claim to handle, plus broken files."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

EXIF_DATETIME_ORIGINAL = 0x9003
EXIF_IFD = 0x8769


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.RandomState(seed)
    return Image.fromarray(rng.randint(0, 255, (height, width, 3), dtype=np.uint8))


def solid(width: int, height: int, colour: tuple[int, int, int]) -> Image.Image:
    return Image.new("RGB", (width, height), colour)


def jpeg_with_exif(
    path: Path,
    image: Image.Image,
    *,
    orientation: int = 1,
    taken: str | None = None,
    make: str | None = None,
    model: str | None = None,
) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    if make:
        exif[0x010F] = make
    if model:
        exif[0x0110] = model
    if taken:
        exif.get_ifd(EXIF_IFD)[EXIF_DATETIME_ORIGINAL] = taken
    image.save(path, "JPEG", exif=exif.tobytes(), quality=90)
    return path


def write_all_formats(folder: Path) -> dict[str, Path]:
    """One valid file per format/mode we support, named by what it exercises."""
    base = noise(96, 64, seed=1)
    files: dict[str, Path] = {}
    files["jpeg"] = folder / "photo.jpg"
    base.save(files["jpeg"], "JPEG")
    files["png_alpha"] = folder / "alpha.png"
    base.convert("RGBA").save(files["png_alpha"], "PNG")
    files["webp"] = folder / "pic.webp"
    base.save(files["webp"], "WEBP")
    files["gif"] = folder / "anim.gif"
    frames = [base.convert("P"), noise(96, 64, seed=2).convert("P")]
    frames[0].save(files["gif"], "GIF", save_all=True, append_images=frames[1:])
    files["cmyk"] = folder / "print.jpg"
    base.convert("CMYK").save(files["cmyk"], "JPEG")
    files["png16"] = folder / "deep.png"
    deep = (np.linspace(0, 65535, 96 * 64).reshape(64, 96)).astype(np.uint16)
    Image.fromarray(deep).save(files["png16"], "PNG")
    files["palette"] = folder / "palette.png"
    base.convert("P", palette=Image.Palette.ADAPTIVE).save(files["palette"], "PNG")
    files["grey_alpha"] = folder / "la.png"
    base.convert("LA").save(files["grey_alpha"], "PNG")
    files["bmp"] = folder / "old.bmp"
    base.save(files["bmp"], "BMP")
    files["tiff"] = folder / "scan.tiff"
    base.save(files["tiff"], "TIFF")
    files["heic"] = folder / "iphone.heic"
    base.save(files["heic"], "HEIF", quality=90)
    files["avif"] = folder / "modern.avif"
    base.save(files["avif"], "AVIF", quality=90)
    return files


def phone_photo(path: Path, fmt: str, *, orientation: int = 6) -> Path:
    """A 120x80 photo as a phone stores it: rotated by EXIF, with time and camera."""
    import msearch.media.images  # noqa: F401  (registers the HEIF codec)

    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F], exif[0x0110] = "Apple", "iPhone 15"
    exif.get_ifd(0x8769)[0x9003] = "2024:05:06 07:08:09"
    noise(120, 80, seed=11).save(path, fmt, exif=exif.tobytes(), quality=90)
    return path


def png_bomb(path: Path, width: int = 30_000, height: int = 30_000) -> Path:
    """A tiny PNG whose header claims a huge 1-bit image (a decompression bomb)."""
    raw_row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(raw_row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )
    return path


def write_broken(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    good = folder / "_good_source.jpg"
    noise(200, 150, seed=3).save(good, "JPEG")
    data = good.read_bytes()
    good.unlink()
    files["truncated"] = folder / "truncated.jpg"
    files["truncated"].write_bytes(data[: len(data) // 3])
    files["empty"] = folder / "empty.jpg"
    files["empty"].write_bytes(b"")
    files["text"] = folder / "notes.png"
    files["text"].write_text("this is not an image\n" * 20)
    files["bomb"] = png_bomb(folder / "bomb.png")
    return files
