"""Image decoding for embedding: every mode to RGB, EXIF orientation applied, big JPEGs
decoded at reduced size, decompression bombs rejected before any pixel is allocated."""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener

from msearch.errors import CorruptMedia, DecompressionBomb, UnsupportedMedia
from msearch.media.detect import detect_bytes

# Our own pixel check runs first with a clear message; Pillow's global guard stays as a
# second line but must not fire before ours on large-but-allowed images.
Image.MAX_IMAGE_PIXELS = None

# HEIC/HEIF (the iPhone's default) through libheif; Pillow itself reads AVIF.
register_heif_opener()

_EXIF_DATETIME_ORIGINAL = 0x9003
_EXIF_DATETIME = 0x0132
_EXIF_MAKE = 0x010F
_EXIF_MODEL = 0x0110
_EXIF_IFD = 0x8769
_ORIENTATION = 0x0112
_TRANSPOSED_ORIENTATIONS = {5, 6, 7, 8}


@dataclass
class DecodedImage:
    """An image ready for the embedder plus what we learned while decoding it."""

    image: Image.Image
    width: int
    height: int
    taken_at: datetime | None
    camera: str | None


def _parse_exif_datetime(raw: object) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        return datetime.strptime(raw.strip().rstrip("\x00"), "%Y:%m:%d %H:%M:%S").replace(
            tzinfo=UTC
        )
    except ValueError:
        return None


def _exif_metadata(img: Image.Image) -> tuple[datetime | None, str | None, int]:
    try:
        exif = img.getexif()
    except Exception:  # malformed EXIF never fails the image
        return None, None, 1
    sub = exif.get_ifd(_EXIF_IFD) if exif else {}
    taken = _parse_exif_datetime(sub.get(_EXIF_DATETIME_ORIGINAL)) or _parse_exif_datetime(
        exif.get(_EXIF_DATETIME)
    )
    make = str(exif.get(_EXIF_MAKE, "")).strip().rstrip("\x00")
    model = str(exif.get(_EXIF_MODEL, "")).strip().rstrip("\x00")
    if make and model.lower().startswith(make.lower()):
        make = ""
    camera = " ".join(part for part in (make, model) if part) or None
    orientation = exif.get(_ORIENTATION, 1)
    return taken, camera, orientation if isinstance(orientation, int) else 1


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB for every mode: alpha composited on white, 16-bit scaled, CMYK/palette converted."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16/32-bit greyscale: scale the actual range down to 8 bits instead of clipping.
        img = img.convert("I")
        extrema = img.getextrema()
        lo, hi = 0.0, 0.0
        if isinstance(extrema, tuple) and all(isinstance(v, int | float) for v in extrema):
            lo, hi = float(extrema[0]), float(extrema[1])  # type: ignore[arg-type]
        scale = 255.0 / max(1.0, hi - lo)
        offset = -lo * scale
        img = img.point(lambda v: v * scale + offset).convert("L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def _reduction(width: int, height: int, min_short: int, min_long: int) -> float:
    """The smallest scale (<= 1) keeping the short side >= min_short and the long side
    >= min_long: enough for the model's input and for the thumbnail, nothing more."""
    short, long = min(width, height), max(width, height)
    return min(1.0, max(min_short / short, min_long / long))


def decode_image(
    source: Path | bytes | BinaryIO,
    *,
    max_pixels: int,
    min_short: int = 224,
    min_long: int = 320,
) -> DecodedImage:
    """Fully decode an image for embedding.

    The returned image is RGB, upright and downscaled to the smallest size whose short side
    is still >= ``min_short`` (the model's input) and long side >= ``min_long`` (the
    thumbnail); JPEGs are reduced while decoding (DCT scaling), which is most of the cost
    of a large photo. ``width``/``height`` are the original size as displayed (after EXIF
    orientation). Raises CorruptMedia, UnsupportedMedia or DecompressionBomb.
    """
    fh: BinaryIO = (
        io.BytesIO(source)
        if isinstance(source, bytes)
        else (source.open("rb") if isinstance(source, Path) else source)
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img: Image.Image
            try:
                img = Image.open(fh)
            except UnidentifiedImageError as exc:
                fh.seek(0)
                if detect_bytes(fh.read(64)) is not None:  # an image's signature, then junk
                    raise CorruptMedia("the image's header is damaged") from exc
                raise UnsupportedMedia("not an image format msearch can decode") from exc
            except (OSError, SyntaxError, ValueError) as exc:
                raise CorruptMedia(f"cannot read image header: {exc}") from exc
            width, height = img.size
            if width <= 0 or height <= 0:
                raise CorruptMedia("image has no pixels")
            if width * height > max_pixels:
                raise DecompressionBomb(
                    f"image is {width}x{height} = {width * height} pixels, above the limit of "
                    f"{max_pixels} (performance.max_image_pixels, or max_query_pixels for "
                    "an uploaded query)"
                )
            scale = _reduction(width, height, min_short, min_long)
            if img.format == "JPEG" and scale < 1.0:
                img.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
            try:
                if getattr(img, "n_frames", 1) > 1:
                    img.seek(0)
                # Loaded before the EXIF is read: reading a PNG's EXIF loads the pixels and
                # swallows a truncation error, leaving half an image that then "loads".
                img.load()
                taken_at, camera, orientation = _exif_metadata(img)
                img = ImageOps.exif_transpose(img) or img
                img = to_rgb(img)
                target = _reduction(img.width, img.height, min_short, min_long)
                if target < 1.0:
                    img = img.resize(
                        (max(1, round(img.width * target)), max(1, round(img.height * target))),
                        Image.Resampling.BICUBIC,
                        reducing_gap=3.0,
                    )
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                raise CorruptMedia(f"image data is truncated or corrupt: {exc}") from exc
    finally:
        if not isinstance(source, bytes) and isinstance(source, Path):
            fh.close()
    if orientation in _TRANSPOSED_ORIENTATIONS:
        width, height = height, width
    return DecodedImage(image=img, width=width, height=height, taken_at=taken_at, camera=camera)


def write_thumbnail(image: Image.Image, dest: Path, size: int) -> None:
    """A JPEG thumbnail no larger than ``size`` on its longer side, written atomically."""
    thumb = image.copy()
    thumb.thumbnail((size, size), Image.Resampling.BICUBIC)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    thumb.save(tmp, "JPEG", quality=85)
    tmp.replace(dest)


# The model's processor resizes the short side to its input and keeps the centred square;
# a longer strip than this is never seen, yet would be resized (a 3x12000 image becomes
# 224x896000 floats, gigabytes). Beyond it the image is cropped around its centre.
MAX_MODEL_ASPECT = 4.0
# Below this the processor cannot tell the channels from the pixels (1x1, 2x2, 3x3
# images fail a whole batch): such images are scaled up to the input first.
MIN_MODEL_SIDE = 16


def fit_for_model(image: Image.Image, input_size: int) -> Image.Image:
    """``image`` cropped to at most ``MAX_MODEL_ASPECT`` : 1 around its centre, and scaled
    up to ``input_size`` when tiny; other images are returned as they are, so the model
    sees exactly what its own processor would make of them."""
    width, height = image.size
    if width > MAX_MODEL_ASPECT * height:
        keep = math.ceil(MAX_MODEL_ASPECT * height)
        left = (width - keep) // 2
        image = image.crop((left, 0, left + keep, height))
    elif height > MAX_MODEL_ASPECT * width:
        keep = math.ceil(MAX_MODEL_ASPECT * width)
        top = (height - keep) // 2
        image = image.crop((0, top, width, top + keep))
    width, height = image.size
    if min(width, height) < MIN_MODEL_SIDE:
        scale = input_size / min(width, height)
        image = image.resize(
            (max(input_size, round(width * scale)), max(input_size, round(height * scale))),
            Image.Resampling.BICUBIC,
        )
    return image


def square(image: Image.Image, fill: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """``image`` padded to a square (a new picture; ``image`` itself when it is one), so
    that a model that centre-crops sees all of it."""
    side = max(image.size)
    if image.width == image.height:
        return image
    canvas = Image.new("RGB", (side, side), fill)
    canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return canvas
