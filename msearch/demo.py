"""Synthetic captioned shapes: the demo library, and the data the demo model learns from.

Every picture is one coloured shape (circle, square, triangle, star, ring, cross) of a size
at a position on a plain or textured background, with captions drawn from varied templates.
Deterministic for a seed. ``variation="heldout"`` renders what training never shows (a
gradient background, a softened image, a wider rotation) to test generalisation.
"""

from __future__ import annotations

import math
import random
import re
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

from msearch.demo_sounds import CLASSES as SOUND_CLASSES
from msearch.demo_sounds import random_spec as random_spec_of_sound
from msearch.demo_sounds import synthesise, write_wav

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (40, 170, 60),
    "blue": (35, 70, 220),
    "yellow": (240, 220, 40),
    "orange": (245, 140, 20),
    "purple": (140, 50, 180),
    "black": (15, 15, 15),
    "white": (250, 250, 250),
}
SHAPES = ("circle", "square", "triangle", "star", "ring", "cross")
SIZES = {"small": 0.26, "medium": 0.38, "large": 0.54}
POSITIONS = {
    "center": (0.5, 0.5),
    "top left corner": (0.27, 0.27),
    "top right corner": (0.73, 0.27),
    "bottom left corner": (0.27, 0.73),
    "bottom right corner": (0.73, 0.73),
    "left": (0.3, 0.5),
    "right": (0.7, 0.5),
    "top": (0.5, 0.3),
    "bottom": (0.5, 0.7),
}
# Backgrounds: name -> (base colour, textured?). Shapes never share their background's tone.
BACKGROUNDS: dict[str, tuple[tuple[int, int, int], bool]] = {
    "grey": ((128, 128, 128), False),
    "light grey": ((200, 200, 200), False),
    "dark grey": ((60, 60, 60), False),
    "beige": ((225, 210, 180), False),
    "striped": ((150, 150, 150), True),
    "noisy": ((110, 110, 110), True),
}
_CLASH = {"white": {"light grey", "beige"}, "black": {"dark grey"}, "yellow": {"beige"}}

TEMPLATES = (
    "a {colour} {shape}",
    "{colour} {shape}",
    "a {size} {colour} {shape}",
    "a picture of a {colour} {shape}",
    "a photo of a {colour} {shape}",
    "{size} {colour} {shape} on a {background} background",
    "a {colour} {shape} on a {background} background",
    "a {colour} {shape} in the {position}",
    "a {size} {colour} {shape} in the {position}",
    "an image with a {colour} {shape}",
)


@dataclass(frozen=True)
class ShapeSpec:
    colour: str
    shape: str
    size: str
    position: str
    background: str

    @property
    def label(self) -> str:
        return f"{self.colour} {self.shape}"


def random_spec(rng: random.Random) -> ShapeSpec:
    colour = rng.choice(list(COLOURS))
    backgrounds = [b for b in BACKGROUNDS if b not in _CLASH.get(colour, set())]
    return ShapeSpec(
        colour,
        rng.choice(SHAPES),
        rng.choice(list(SIZES)),
        rng.choice(list(POSITIONS)),
        rng.choice(backgrounds),
    )


def caption(spec: ShapeSpec, rng: random.Random) -> str:
    text = rng.choice(TEMPLATES).format(
        colour=spec.colour,
        shape=spec.shape,
        size=spec.size,
        position=spec.position,
        background=spec.background,
    )
    return text.replace("a orange", "an orange")


# The same scenes in Chinese, written as people write it: no spaces, so a tokenizer reads
# it a character at a time. A shape has the names people give it (星形 or 星星).
COLOURS_ZH = {
    "red": "红色",
    "green": "绿色",
    "blue": "蓝色",
    "yellow": "黄色",
    "orange": "橙色",
    "purple": "紫色",
    "black": "黑色",
    "white": "白色",
}
SHAPES_ZH: dict[str, tuple[str, ...]] = {
    "circle": ("圆形", "圆"),
    "square": ("正方形", "方块"),
    "triangle": ("三角形",),
    "star": ("星形", "星星", "五角星"),
    "ring": ("圆环", "环形"),
    "cross": ("十字形", "十字"),
}
SIZES_ZH = {"small": "小", "medium": "中等大小的", "large": "大"}
POSITIONS_ZH = {
    "center": "中间",
    "top left corner": "左上角",
    "top right corner": "右上角",
    "bottom left corner": "左下角",
    "bottom right corner": "右下角",
    "left": "左边",
    "right": "右边",
    "top": "上方",
    "bottom": "下方",
}
BACKGROUNDS_ZH = {
    "grey": "灰色",
    "light grey": "浅灰色",
    "dark grey": "深灰色",
    "beige": "米色",
    "striped": "条纹",
    "noisy": "杂色",
}
TEMPLATES_ZH = (
    "一个{colour}的{shape}",
    "{colour}{shape}",
    "{colour}的{shape}",
    "一个{size}{colour}{shape}",
    "{size}{colour}{shape}",
    "{background}背景上的{colour}{shape}",
    "{background}背景上的{size}{colour}{shape}",
    "{position}的{colour}{shape}",
    "{position}有一个{colour}的{shape}",
    "一张{colour}{shape}的图片",
    "一张{colour}{shape}的照片",
    "图片里有一个{colour}的{shape}",
)


def caption_zh(spec: ShapeSpec, rng: random.Random) -> str:
    return rng.choice(TEMPLATES_ZH).format(
        colour=COLOURS_ZH[spec.colour],
        shape=rng.choice(SHAPES_ZH[spec.shape]),
        size=SIZES_ZH[spec.size],
        position=POSITIONS_ZH[spec.position],
        background=BACKGROUNDS_ZH[spec.background],
    )


def query(colour: str, shape: str, language: str = "en") -> str:
    """How a person asks for a colour and shape: "a red star", "一个红色的星形"."""
    if language == "zh":
        return f"一个{COLOURS_ZH[colour]}的{SHAPES_ZH[shape][0]}"
    return f"an {colour} {shape}" if colour == "orange" else f"a {colour} {shape}"


def vocabulary() -> list[str]:
    """Every word of the English captions, then every character of the Chinese ones."""
    words = {"an"}
    for template in TEMPLATES:
        words.update(w for w in template.split() if not w.startswith("{"))
    for group in (COLOURS, SHAPES, SIZES, POSITIONS, BACKGROUNDS):
        for name in group:
            words.update(name.split())
    chinese = [
        *(re.sub(r"\{\w+\}", "", t) for t in TEMPLATES_ZH),
        *COLOURS_ZH.values(),
        *SIZES_ZH.values(),
        *POSITIONS_ZH.values(),
        *BACKGROUNDS_ZH.values(),
        *(alias for aliases in SHAPES_ZH.values() for alias in aliases),
    ]
    return sorted(words) + sorted(set("".join(chinese)))


def _background(size: int, name: str, rng: random.Random, variation: str | None) -> Image.Image:
    base, textured = BACKGROUNDS[name]
    if variation == "heldout":
        # A diagonal gradient between two greys: never seen in training.
        lo, hi = rng.randint(70, 120), rng.randint(150, 210)
        ramp = Image.new("L", (size, size))
        ramp.putdata(
            [lo + (hi - lo) * (x + y) // (2 * size - 2) for y in range(size) for x in range(size)]
        )
        return Image.merge("RGB", [ramp] * 3)
    image = Image.new("RGB", (size, size), base)
    if textured and name == "striped":
        draw = ImageDraw.Draw(image)
        step = max(4, size // 12)
        shade = tuple(max(0, c - 45) for c in base)
        for x in range(-size, size, step * 2):
            draw.polygon(
                [(x, 0), (x + step, 0), (x + step + size, size), (x + size, size)], fill=shade
            )
    elif textured:
        noise = Image.effect_noise((size, size), 40).convert("RGB")
        image = Image.blend(image, noise, 0.35)
    return image


def _star(cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    points = []
    for i in range(10):
        radius = r if i % 2 == 0 else r * 0.45
        theta = angle - math.pi / 2 + i * math.pi / 5
        points.append((cx + radius * math.cos(theta), cy + radius * math.sin(theta)))
    return points


def _rotated(
    points: list[tuple[float, float]], cx: float, cy: float, angle: float
) -> list[tuple[float, float]]:
    cos, sin = math.cos(angle), math.sin(angle)
    return [
        (cx + (x - cx) * cos - (y - cy) * sin, cy + (x - cx) * sin + (y - cy) * cos)
        for x, y in points
    ]


def render(
    spec: ShapeSpec, size: int, rng: random.Random, variation: str | None = None
) -> Image.Image:
    """Draw ``spec`` on a ``size``-pixel square, supersampled for smooth edges."""
    scale = 2
    canvas = size * scale
    image = _background(canvas, spec.background, rng, variation)
    draw = ImageDraw.Draw(image)
    fill = COLOURS[spec.colour]
    jitter = 0.04 * canvas
    cx = POSITIONS[spec.position][0] * canvas + rng.uniform(-jitter, jitter)
    cy = POSITIONS[spec.position][1] * canvas + rng.uniform(-jitter, jitter)
    r = SIZES[spec.size] * canvas / 2 * rng.uniform(0.9, 1.1)
    angle = rng.uniform(-0.6, 0.6) if variation == "heldout" else rng.uniform(-0.5, 0.5)
    box = [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if spec.shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif spec.shape == "ring":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=fill, width=max(2, int(r * 0.3)))
    elif spec.shape == "square":
        draw.polygon(_rotated(box, cx, cy, angle), fill=fill)
    elif spec.shape == "triangle":
        tri = [(cx, cy - r), (cx + r * 0.95, cy + r * 0.8), (cx - r * 0.95, cy + r * 0.8)]
        draw.polygon(_rotated(tri, cx, cy, angle), fill=fill)
    elif spec.shape == "star":
        draw.polygon(_star(cx, cy, r, angle), fill=fill)
    elif spec.shape == "cross":
        arm = r * 0.32
        for part in (
            [(cx - r, cy - arm), (cx + r, cy - arm), (cx + r, cy + arm), (cx - r, cy + arm)],
            [(cx - arm, cy - r), (cx + arm, cy - r), (cx + arm, cy + r), (cx - arm, cy + r)],
        ):
            draw.polygon(_rotated(part, cx, cy, angle), fill=fill)
    image = image.resize((size, size), Image.Resampling.LANCZOS)
    if variation == "heldout":
        image = image.filter(ImageFilter.GaussianBlur(0.6))
    return image


def write_library(
    folder: Path, count: int, *, seed: int = 7, size: int = 256, variation: str | None = None
) -> list[tuple[Path, ShapeSpec]]:
    """A folder of PNGs, one shape each, in subfolders by background (for folder filters).
    Every colour×shape pair appears before any repeats."""
    rng = random.Random(seed)
    pairs = [(c, s) for c in COLOURS for s in SHAPES]
    written: list[tuple[Path, ShapeSpec]] = []
    for i in range(count):
        colour, shape = pairs[i % len(pairs)]
        drawn = random_spec(rng)
        backgrounds = [b for b in BACKGROUNDS if b not in _CLASH.get(colour, set())]
        spec = ShapeSpec(
            colour,
            shape,
            drawn.size,
            drawn.position,
            drawn.background
            if drawn.background in backgrounds
            else backgrounds[i % len(backgrounds)],
        )
        path = (
            folder / spec.background.replace(" ", "-") / (f"{spec.colour}-{spec.shape}-{i:04}.png")
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        render(spec, size, rng, variation).save(path)
        written.append((path, spec))
    return written


def slideshow(
    path: Path,
    shots: Sequence[tuple[Image.Image, float]],
    *,
    rate: int = 25,
    soundtrack: Path | None = None,
) -> list[float]:
    """An H.264 video showing each picture for its duration (with ``soundtrack`` as its AAC
    sound); returns the cut times."""
    with tempfile.TemporaryDirectory() as tmp:
        lines = []
        for i, (image, duration) in enumerate(shots):
            still = Path(tmp) / f"{i}.png"
            image.save(still)
            lines += [f"file '{still}'", f"duration {duration}"]
        lines.append(f"file '{Path(tmp) / f'{len(shots) - 1}.png'}'")
        listing = Path(tmp) / "list.txt"
        listing.write_text("\n".join(lines) + "\n")
        subprocess.run(
            [
                "ffmpeg",
                "-y",
                "-hide_banner",
                "-loglevel",
                "error",
                "-f",
                "concat",
                "-safe",
                "0",
                "-i",
                str(listing),
                *(["-i", str(soundtrack), "-c:a", "aac", "-shortest"] if soundtrack else []),
                "-vf",
                f"fps={rate},format=yuv420p",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                str(path),
            ],
            check=True,
        )
    cuts, t = [], 0.0
    for _, duration in shots[:-1]:
        t += duration
        cuts.append(round(t, 3))
    return cuts


def write_videos(
    folder: Path, count: int, *, seed: int = 11, size: int = 256, soundtracks: bool = True
) -> list[tuple[Path, list[ShapeSpec]]]:
    """Short videos of 3-4 shots, one shape each; every shot has its own background, so
    each change of shot is a real cut. Each has a synthetic sound (``demo_sounds``) under it,
    unless ``soundtracks`` is false."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(count):
        backgrounds = rng.sample(list(BACKGROUNDS), rng.randint(3, 4))
        specs = []
        for background in backgrounds:
            colour = rng.choice([c for c in COLOURS if background not in _CLASH.get(c, set())])
            specs.append(
                ShapeSpec(
                    colour,
                    rng.choice(SHAPES),
                    rng.choice(list(SIZES)),
                    rng.choice(list(POSITIONS)),
                    background,
                )
            )
        shots = [
            (render(spec, size, rng), round(rng.uniform(1.5, 3.5) * 25) / 25) for spec in specs
        ]
        path = folder / f"clip-{i:02}.mp4"
        if soundtracks:
            # a sound of its own under each video (its own generator: the pictures stay
            # those of the seed)
            sound_rng = random.Random(seed * 1000 + i)
            kind = SOUND_CLASSES[i % (len(SOUND_CLASSES) - 1)]  # not silence
            spec = replace(random_spec_of_sound(sound_rng, kind), seconds=sum(d for _, d in shots))
            with tempfile.TemporaryDirectory() as tmp:
                track = write_wav(Path(tmp) / "track.wav", synthesise(spec, sound_rng))
                slideshow(path, shots, soundtrack=track)
        else:
            slideshow(path, shots)
        written.append((path, specs))
    return written


def write_catalogue(path: Path, pages: int, *, seed: int = 13, size: int = 256) -> list[ShapeSpec]:
    """A PDF of ``pages`` pages, one shape each, drawn under a caption that says what it
    is: found by its words and by its looks. Written with PDFium (pypdfium2), the library
    that reads it."""
    import ctypes
    import io

    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    from msearch.media.documents import PDFIUM_LOCK

    rng = random.Random(seed)
    specs = [random_spec(rng) for _ in range(pages)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with PDFIUM_LOCK:
        pdf = pdfium.PdfDocument.new()
        try:
            font = pdfium_c.FPDFText_LoadStandardFont(pdf, b"Helvetica")
            for number, spec in enumerate(specs, start=1):
                page = pdf.new_page(612, 792)  # US Letter, in points
                picture = io.BytesIO()
                render(spec, size, rng).save(picture, "JPEG", quality=90)
                picture.seek(0)
                image = pdfium.PdfImage.new(pdf)
                image.load_jpeg(picture, inline=True)
                image.set_matrix(pdfium.PdfMatrix().scale(420, 420).translate(96, 150))
                page.insert_obj(image)
                caption = (
                    f"Page {number}: {spec.size} {spec.label} on a {spec.background} background"
                )
                encoded = (caption + "\0").encode("utf-16-le")
                text = pdfium_c.FPDFPageObj_CreateTextObj(pdf, font, 18.0)
                pdfium_c.FPDFText_SetText(
                    text, (ctypes.c_ushort * (len(encoded) // 2)).from_buffer_copy(encoded)
                )
                pdfium_c.FPDFPageObj_Transform(text, 1, 0, 0, 1, 72, 690)
                pdfium_c.FPDFPage_InsertObject(page, text)
                page.gen_content()
                page.close()
            pdf.save(str(path))
        finally:
            pdf.close()
    return specs
