"""Infinity (``infinity-emb``) in Python-native mode: no HTTP, the engine lives in-process.

Infinity is dormant upstream and has sharp edges this module guards against
(see shared ENVIRONMENT.md): a worker-thread exception wedges every later request, so each
call has a timeout and a timed-out engine is restarted; CLIP text is truncated at
``config.max_length`` (20 in transformers 4.x) unless we raise it to the text tower's real
context length.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from PIL import Image

from msearch.config import EmbeddingSettings
from msearch.embedding.models import model_label, resolve_model
from msearch.errors import EmbeddingError, EmbeddingTimeout, ModelUnavailable
from msearch.media.images import fit_for_model

log = logging.getLogger(__name__)


def _image_input_size(replica: Any) -> int | None:
    processor = getattr(getattr(replica, "processor", None), "image_processor", None)
    sides: list[int] = []
    for attr in ("crop_size", "size"):
        value = getattr(processor, attr, None)
        if isinstance(value, dict):
            sides.extend(int(v) for v in value.values() if isinstance(v, int))
        elif isinstance(value, int):
            sides.append(value)
    return max(sides) if sides else None


def _text_context_length(model: Any) -> int | None:
    config = getattr(model, "config", None)
    text_config = getattr(config, "text_config", None)
    length = getattr(text_config, "max_position_embeddings", None)
    return int(length) if isinstance(length, int) else None


class InfinityEngine:
    """The default EmbeddingEngine, backed by ``infinity_emb.AsyncEmbeddingEngine``."""

    def __init__(self, settings: EmbeddingSettings, *, cache_dir: Path | None = None) -> None:
        self._settings = settings
        self._source = resolve_model(settings.model)
        self._model_id = model_label(settings.model)
        self._cache_dir = cache_dir
        self._engine: Any = None
        self._dim: int | None = None
        self._input_size = 224
        self._restart_lock = asyncio.Lock()
        self.restarts = 0

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
        return self._input_size

    @property
    def device(self) -> str:
        replicas = getattr(self._engine, "_model_replicas", None) or []
        model = getattr(replicas[0], "model", None) if replicas else None
        return str(getattr(model, "device", "unknown"))

    async def start(self) -> None:
        if self._engine is not None:
            return
        self._engine = await asyncio.to_thread(self._load)
        await self._engine.astart()
        probe = await self._call(self._engine.embed(sentences=["msearch"]))
        self._dim = len(probe[0][0])
        replicas = getattr(self._engine, "_model_replicas", None) or [None]
        self._input_size = _image_input_size(replicas[0]) or self._input_size
        log.info("embedding model %s loaded (dim %d, device %s)", self.model_id, self._dim,
                 self.device)

    def _load(self) -> Any:
        if self._cache_dir is not None:
            # Infinity writes .infinity_cache into the working directory otherwise.
            os.environ.setdefault("INFINITY_HOME", str(self._cache_dir))
        root_handlers = list(logging.getLogger().handlers)
        try:
            from infinity_emb import AsyncEmbeddingEngine, EngineArgs
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ModelUnavailable(
                "infinity-emb is not installed: install msearch with the 'embed' extra"
            ) from exc
        finally:
            # Importing infinity_emb replaces the root handlers; give ours back.
            logging.getLogger().handlers = root_handlers
            logging.getLogger("infinity_emb").setLevel(logging.WARNING)
        options: dict[str, Any] = {
            "model_name_or_path": self._source,
            "engine": "torch",
            "device": self._settings.device,
            "dtype": self._settings.dtype,
            "batch_size": self._settings.batch_size,
            "bettertransformer": False,  # needs optimum, which breaks infinity's import
            "model_warmup": False,
            "trust_remote_code": False,
        }
        args = EngineArgs(**options)
        try:
            engine = AsyncEmbeddingEngine.from_args(args)
        except Exception as exc:
            raise ModelUnavailable(
                f"cannot load embedding model {self._settings.model!r} ({self._source}): {exc}. "
                "Set embedding.model to a local model directory, or 'demo' (see README)."
            ) from exc
        self._fix_text_truncation(engine)
        return engine

    def _fix_text_truncation(self, engine: Any) -> None:
        for replica in getattr(engine, "_model_replicas", []):
            if not hasattr(replica, "max_length"):
                continue
            context = self._settings.text_max_tokens or _text_context_length(
                getattr(replica, "model", None)
            )
            if context is not None:
                replica.max_length = context

    async def stop(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.astop()

    async def embed_texts(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        engine = self._require_engine()
        embeddings, _ = await self._call(engine.embed(sentences=list(texts)))
        return [list(map(float, e)) for e in embeddings]

    async def embed_images(self, images: list[Image.Image]) -> list[list[float]]:
        if not images:
            return []
        for image in images:
            if not isinstance(image, Image.Image) or image.mode != "RGB":
                raise EmbeddingError("embed_images takes decoded RGB PIL images only")
        engine = self._require_engine()
        fitted = [fit_for_model(image, self._input_size) for image in images]
        embeddings, _ = await self._call(engine.image_embed(images=fitted))
        return [list(map(float, e)) for e in embeddings]

    def _require_engine(self) -> Any:
        if self._engine is None:
            raise ModelUnavailable("the embedding engine is not running")
        return self._engine

    async def _call(self, awaitable: Any) -> Any:
        try:
            return await asyncio.wait_for(awaitable, timeout=self._settings.timeout_s)
        except TimeoutError:
            await self._restart()
            raise EmbeddingTimeout(
                f"the embedding engine did not answer within {self._settings.timeout_s:g}s; "
                "it was restarted"
            ) from None
        except EmbeddingError:
            raise
        except Exception as exc:
            raise EmbeddingError(f"embedding failed: {exc}") from exc

    async def _restart(self) -> None:
        """Stop and start the batch handler: the threads of a wedged worker are replaced,
        the loaded weights are kept."""
        async with self._restart_lock:
            engine = self._engine
            if engine is None:
                return
            log.warning("restarting the embedding engine after a timeout")
            try:
                await asyncio.wait_for(engine.astop(), timeout=30)
            except Exception:  # a broken handler must not block the restart
                log.exception("stopping the wedged engine failed")
                engine.running = False
            await engine.astart()
            self.restarts += 1
