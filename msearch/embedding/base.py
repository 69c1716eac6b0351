"""The small interface every embedding engine implements."""

from __future__ import annotations

from typing import Protocol, TypeGuard, runtime_checkable

import numpy as np
import numpy.typing as npt
from PIL import Image

# A vector per token of an input (ColPali, ColQwen2). A page's are kept as an array (tokens
# × dimensions) from the model to the store: ~770 of 128 floats a page made Python lists
# cost 4 ms a page on the event loop.
PageTokens = npt.NDArray[np.float32]
QueryTokens = list[list[float]]


class EmbeddingEngine(Protocol):
    """Turns texts and images (or sounds) into L2-normalised vectors in one shared space.

    ``start`` loads the model (slow, once); ``embed_*`` may be called concurrently and
    each call either returns one vector per input, in order, or raises an EmbeddingError
    within the engine's timeout. Images must be fully decoded RGB PIL images.
    """

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def input_size(self) -> int:
        """The image side the model looks at (224 for CLIP ViT-B/32): images need not be
        decoded any larger."""
        ...

    @property
    def sampling_rate(self) -> int | None:
        """The rate a model that hears takes sound at (48 kHz for LAION CLAP); None for
        one that does not."""
        ...

    @property
    def relevance_floor(self) -> float | None:
        """The score under which an image (or sound) is no close match for a text query;
        None when the model is not calibrated."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def embed_texts(self, texts: list[str]) -> list[list[float]]: ...

    async def embed_images(self, images: list[Image.Image]) -> list[list[float]]: ...

    async def embed_audio(self, clips: list[bytes]) -> list[list[float]]:
        """Sound clips, each a mono WAV at exactly ``sampling_rate``; an engine whose model
        does not hear raises ModelUnavailable."""
        ...

    def for_queries(self) -> EmbeddingEngine:
        """The engine searches use: where the engine can, one over the same model with a
        failure domain of its own (a query that breaks it never fails indexing, and
        queries never queue behind indexing's batches); otherwise itself."""
        ...


@runtime_checkable
class MultiVectorEngine(Protocol):
    """An engine whose model gives a vector per token (document pages and the queries for
    them), found by MaxSim rather than by one vector's cosine."""

    @property
    def multivector(self) -> bool: ...

    async def embed_pages(self, images: list[Image.Image]) -> list[PageTokens]: ...

    async def embed_query_tokens(self, texts: list[str]) -> list[QueryTokens]: ...


def is_multivector(engine: object) -> TypeGuard[MultiVectorEngine]:
    return isinstance(engine, MultiVectorEngine) and engine.multivector
