"""A small in-memory engine for the unit tier: deterministic vectors without a model.

Words hash into a bag-of-words vector and images into their coarse colours, both
L2-normalised, so the same input always gives the same vector and similar inputs give
similar ones. It implements ``EmbeddingEngine`` in full; it is not a stand-in for a model
in any test that asserts what search means (those use real engines)."""

from __future__ import annotations

import hashlib
import math

from PIL import Image


class HashEngine:
    def __init__(self, dim: int = 32, model_id: str = "hash") -> None:
        self._dim = dim
        self._model_id = model_id
        self.started = False

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def input_size(self) -> int:
        return 16

    @property
    def relevance_floor(self) -> float | None:
        return None

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def embed_texts(self, texts: list[str]) -> list[list[float]]:
        vectors = []
        for text in texts:
            vector = [0.0] * self._dim
            for word in text.lower().split():
                slot = int.from_bytes(hashlib.sha1(word.encode()).digest()[:4], "big")
                vector[slot % self._dim] += 1.0
            vectors.append(_unit(vector))
        return vectors

    async def embed_images(self, images: list[Image.Image]) -> list[list[float]]:
        vectors = []
        for image in images:
            pixels = list(image.convert("RGB").resize((4, 4)).getdata())
            flat = [channel / 255.0 + 0.01 for pixel in pixels for channel in pixel]
            vectors.append(_unit([flat[i % len(flat)] for i in range(self._dim)]))
        return vectors

    def for_queries(self) -> HashEngine:
        return self


def _unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]
