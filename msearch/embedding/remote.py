"""An Infinity server (``infinity_emb v2``) over HTTP instead of the in-process engine:
embedding scales out to other machines (a GPU box, several behind a load balancer).

The server's OpenAI-compatible ``POST /embeddings`` takes texts, or images as data URIs
with ``"modality": "image"``. Every call has the configured timeout; a server that is down,
dying or slow gives a clear error within it and the next call simply tries again (HTTP
needs no restart, the connection pool reconnects). Indexing and queries use separate
connection pools, so queries never queue behind indexing's batches.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
from typing import Any

import httpx
from PIL import Image

from msearch.config import EmbeddingSettings
from msearch.embedding.base import EmbeddingEngine
from msearch.embedding.calibration import relevance_floor
from msearch.embedding.models import model_label
from msearch.errors import EmbeddingError, EmbeddingTimeout, ImageRejected, ModelUnavailable
from msearch.media.images import fit_for_model
from msearch.metrics import EMBED_SECONDS, timed

log = logging.getLogger(__name__)

# What the server is told the model looks at; its own processor resizes to its real size.
_INPUT_SIZE = 224


class _Connection:
    """One pool of connections to the server, with the error mapping every call shares."""

    def __init__(self, url: str, api_key: str | None, timeout_s: float, lane: str) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = url.rstrip("/")
        self.lane = lane
        self._client = httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=httpx.Timeout(timeout_s)
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def get(self, path: str) -> Any:
        return await self._send("GET", path, None)

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        return await self._send("POST", path, body)

    async def _send(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        try:
            response = await self._client.request(method, path, json=body)
        except httpx.TimeoutException as exc:
            raise EmbeddingTimeout(
                f"the Infinity server at {self.url} did not answer in time ({self.lane})"
            ) from exc
        except httpx.HTTPError as exc:
            raise EmbeddingError(
                f"cannot reach the Infinity server at {self.url}: {type(exc).__name__}: {exc}"
            ) from exc
        if response.status_code == 200:
            return response.json()
        detail = _error_detail(response)
        if response.status_code == 400 and "Corruption" in detail:
            raise ImageRejected(f"the model cannot take this image: {detail}")
        if response.status_code in (401, 403):
            raise ModelUnavailable(
                f"the Infinity server at {self.url} refused the API key "
                "(embedding.api_key): " + detail
            )
        raise EmbeddingError(
            f"the Infinity server at {self.url} answered {response.status_code}: {detail}"
        )


def _error_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", error))[:300]
    return str(body.get("detail", body) if isinstance(body, dict) else body)[:300]


def _data_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")  # lossless: the server sees the pixels msearch decoded
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


class RemoteInfinityEngine:
    """``EmbeddingEngine`` over an Infinity server (``embedding.url``)."""

    def __init__(self, settings: EmbeddingSettings, *, lane: str = "indexing") -> None:
        if settings.url is None:
            raise ValueError("embedding.url is not set")
        self._settings = settings
        self._url = settings.url
        self._lane = lane
        self._connection: _Connection | None = None
        self._served: str | None = None
        self._model_id = model_label(settings.model)
        self._dim: int | None = None
        self._queries: RemoteInfinityEngine | None = None
        self._relevance_floor = relevance_floor(settings)

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        if self._dim is None:
            raise ModelUnavailable("the embedding engine has not been started")
        return self._dim

    @property
    def input_size(self) -> int:
        return _INPUT_SIZE

    @property
    def relevance_floor(self) -> float | None:
        return self._relevance_floor

    async def start(self) -> None:
        if self._connection is not None:
            return
        connection = _Connection(
            self._url, self._settings.api_key, self._settings.timeout_s, self._lane
        )
        try:
            served = await self._served_model(connection)
            probe = await self._embed(connection, served, {"input": ["msearch"]})
        except EmbeddingError as exc:
            await connection.close()
            raise ModelUnavailable(exc.message) from exc
        self._connection, self._served, self._dim = connection, served, len(probe[0])
        log.info(
            "embedding model %s served by %s (dim %d, %s lane)",
            served,
            self._url,
            self._dim,
            self._lane,
        )

    async def _served_model(self, connection: _Connection) -> str:
        """The server's name for the configured model: the one it serves, when it serves
        one; else the one named like ``embedding.model``."""
        models = [m["id"] for m in (await connection.get("/models")).get("data", [])]
        wanted = self._settings.model
        if wanted in models:
            return wanted
        if len(models) == 1:
            return str(models[0])
        raise EmbeddingError(
            f"the Infinity server at {self._url} serves {', '.join(models) or 'no model'}; "
            f"set embedding.model to one of them (it is {wanted})"
        )

    async def stop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()
        if self._queries is not None:
            await self._queries.stop()

    def for_queries(self) -> EmbeddingEngine:
        """A twin over a pool of its own, started on first use."""
        if self._queries is None:
            self._queries = RemoteInfinityEngine(self._settings, lane="queries")
        return _LazyStart(self._queries, self)

    async def embed_texts(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        with timed(EMBED_SECONDS, "text"):
            return await self._embed(self._require(), self._served or "", {"input": texts})

    @property
    def sampling_rate(self) -> int | None:
        return None

    async def embed_audio(self, clips: list[bytes]) -> list[list[float]]:
        raise ModelUnavailable(
            "sound is embedded in-process only: embedding.url serves the visual model"
        )

    async def embed_images(self, images: list[Image.Image]) -> list[list[float]]:
        if not images:
            return []
        for image in images:
            if not isinstance(image, Image.Image) or image.mode != "RGB":
                raise EmbeddingError("embed_images takes decoded RGB PIL images only")
        # Encoding is CPU work: off the event loop.
        uris = await asyncio.to_thread(
            lambda: [_data_uri(fit_for_model(image, _INPUT_SIZE)) for image in images]
        )
        with timed(EMBED_SECONDS, "image"):
            return await self._embed(
                self._require(), self._served or "", {"input": uris, "modality": "image"}
            )

    async def _embed(
        self, connection: _Connection, served: str, body: dict[str, Any]
    ) -> list[list[float]]:
        reply = await connection.post(
            "/embeddings", {"model": served, "encoding_format": "float", **body}
        )
        rows = sorted(reply.get("data", []), key=lambda row: row["index"])
        if len(rows) != len(body["input"]):
            raise EmbeddingError(
                f"the Infinity server at {self._url} returned {len(rows)} embeddings "
                f"for {len(body['input'])} inputs"
            )
        return [[float(v) for v in row["embedding"]] for row in rows]

    def _require(self) -> _Connection:
        if self._connection is None:
            raise ModelUnavailable("the embedding engine is not running")
        return self._connection


class _LazyStart:
    """The query twin: same model facts as its owner, started at its first query."""

    def __init__(self, twin: RemoteInfinityEngine, owner: RemoteInfinityEngine) -> None:
        self._twin = twin
        self._owner = owner
        self._starting = asyncio.Lock()

    @property
    def model_id(self) -> str:
        return self._owner.model_id

    @property
    def dim(self) -> int:
        return self._owner.dim

    @property
    def input_size(self) -> int:
        return self._owner.input_size

    @property
    def relevance_floor(self) -> float | None:
        return self._owner.relevance_floor

    async def start(self) -> None:
        async with self._starting:
            await self._twin.start()

    async def stop(self) -> None:
        await self._twin.stop()

    def for_queries(self) -> EmbeddingEngine:
        return self

    async def embed_texts(self, texts: list[str]) -> list[list[float]]:
        await self.start()
        return await self._twin.embed_texts(texts)

    async def embed_images(self, images: list[Image.Image]) -> list[list[float]]:
        await self.start()
        return await self._twin.embed_images(images)

    @property
    def sampling_rate(self) -> int | None:
        return None

    async def embed_audio(self, clips: list[bytes]) -> list[list[float]]:
        return await self._twin.embed_audio(clips)
