"""Synthetic captioned sounds: what the demo CLAP is trained on and what `msearch demo`
writes into its library. Each class is one kind of sound a caption can name, drawn with
varied pitch, loudness, duration and background noise; ``variation="heldout"`` adds a
tremolo and a louder background that training never hears."""

from __future__ import annotations

import random
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

RATE = 48_000
Samples = npt.NDArray[np.float32]

# class -> the captions that name it (the first is the canonical query)
CAPTIONS: dict[str, tuple[str, ...]] = {
    "hum": ("a low hum", "a deep drone", "a low steady tone"),
    "beep": ("a high beep", "a high pitched tone", "a beeping sound"),
    "noise": ("static noise", "a hiss", "white noise"),
    "rising": ("a rising whistle", "a rising tone", "an upward sweep"),
    "falling": ("a falling whistle", "a falling tone", "a downward sweep"),
    "clicks": ("rhythmic clicking", "a ticking clock", "regular clicks"),
    "siren": ("a siren", "two alternating tones", "an alarm siren"),
    "silence": ("silence", "nothing at all", "a quiet room"),
}
CLASSES = tuple(CAPTIONS)


@dataclass(frozen=True)
class SoundSpec:
    kind: str
    seconds: float
    loudness: float
    pitch: float  # a class's own frequency parameter, 0..1 across its range
    background: float
    rate_hz: float  # clicks per second, siren switches per second


def random_spec(rng: random.Random, kind: str | None = None) -> SoundSpec:
    return SoundSpec(
        kind=kind or rng.choice(CLASSES),
        seconds=rng.uniform(1.0, 10.0),
        loudness=rng.uniform(0.15, 0.7),
        pitch=rng.random(),
        background=rng.uniform(0.0, 0.02),
        rate_hz=rng.uniform(1.5, 6.0),
    )


def caption(spec: SoundSpec, rng: random.Random) -> str:
    return rng.choice(CAPTIONS[spec.kind])


def vocabulary() -> list[str]:
    return sorted({word for captions in CAPTIONS.values() for c in captions for word in c.split()})


def _tone(frequency: Samples | float, t: Samples) -> Samples:
    if isinstance(frequency, float):
        phase = 2 * np.pi * frequency * t
    else:
        phase = 2 * np.pi * np.cumsum(frequency) / RATE
    tone: Samples = np.sin(phase).astype(np.float32)
    return tone


def synthesise(spec: SoundSpec, rng: random.Random, variation: str | None = None) -> Samples:
    """The sound of ``spec`` at 48 kHz, mono, within [-1, 1]."""
    n = int(spec.seconds * RATE)
    t = np.arange(n, dtype=np.float32) / RATE
    noise = np.random.default_rng(rng.getrandbits(32))
    kind, p = spec.kind, spec.pitch
    if kind == "hum":
        f = 50.0 + 100.0 * p
        signal = _tone(f, t) + 0.3 * _tone(2 * f, t)
    elif kind == "beep":
        signal = _tone(1500.0 + 2500.0 * p, t)
    elif kind == "noise":
        signal = noise.uniform(-1, 1, n).astype(np.float32)
    elif kind in ("rising", "falling"):
        low, high = 300.0 + 500.0 * p, 1500.0 + 1500.0 * p
        ramp = np.geomspace(low, high, n).astype(np.float32)
        signal = _tone(ramp if kind == "rising" else ramp[::-1].copy(), t)
    elif kind == "clicks":
        signal = np.zeros(n, dtype=np.float32)
        click = np.exp(-np.arange(int(0.004 * RATE)) / (0.0008 * RATE)).astype(np.float32)
        click *= noise.uniform(-1, 1, click.size).astype(np.float32)
        for start in np.arange(0, n - click.size, RATE / spec.rate_hz).astype(int):
            signal[start : start + click.size] += click
    elif kind == "siren":
        low = 600.0 + 300.0 * p
        high = low * 1.45
        switch = (np.floor(t * spec.rate_hz / 2) % 2).astype(np.float32)
        signal = _tone(low + (high - low) * switch, t)
    elif kind == "silence":
        signal = np.zeros(n, dtype=np.float32)
    else:
        raise ValueError(f"unknown sound class {kind!r}")
    signal = spec.loudness * signal / max(1e-6, float(np.abs(signal).max(initial=0.0)))
    background = spec.background
    if variation == "heldout":
        tremolo = 1.0 - 0.35 * (1 + np.sin(2 * np.pi * 5.0 * t)) / 2
        signal = signal * tremolo.astype(np.float32)
        background += 0.02
    signal = signal + background * noise.standard_normal(n).astype(np.float32)
    return np.clip(signal, -1.0, 1.0).astype(np.float32)


def write_wav(path: Path, samples: Samples, rate: int = RATE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return path


def write_sounds(
    folder: Path, count: int, *, seed: int = 7, variation: str | None = None
) -> list[tuple[Path, SoundSpec]]:
    """``count`` captioned sounds as WAV files named after their class."""
    rng = random.Random(seed)
    written = []
    for i in range(count):
        spec = random_spec(rng, CLASSES[i % len(CLASSES)])
        samples = synthesise(spec, rng, variation)
        path = write_wav(folder / f"{spec.kind}-{i:03d}.wav", samples)
        written.append((path, spec))
    return written
