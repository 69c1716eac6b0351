"""Infinity (``infinity-emb``) in Python-native mode: no HTTP, the engine lives in-process.

Infinity is dormant upstream and has sharp edges this module guards against
(see shared ENVIRONMENT.md): a worker-thread exception wedged every later request, so a
failing model step now fails its batch alone (``containment``), each call has a timeout
and a timed-out engine is restarted; CLIP text is truncated at
``config.max_length`` (20 in transformers 4.x) unless we raise it to the text tower's real
context length.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from msearch.config import EmbeddingSettings
from msearch.devices import resolve_device
from msearch.embedding.base import EmbeddingEngine, PageTokens, QueryTokens
from msearch.embedding.calibration import relevance_floor
from msearch.embedding.colpali import may_be_col_model, mend_colpali_engine, refuse_adapter
from msearch.embedding.containment import contain_failures, raise_contained
from msearch.embedding.models import (
    cached_snapshot,
    is_hub_id,
    model_label,
    probe_hub,
    resolve_model,
    unreachable_model,
)
from msearch.errors import (
    AudioRejected,
    EmbeddingError,
    EmbeddingTimeout,
    ImageRejected,
    ModelUnavailable,
)
from msearch.media.images import fit_for_model
from msearch.metrics import EMBED_SECONDS, timed

log = logging.getLogger(__name__)


def _token_vectors(embeddings: list[Any]) -> list[PageTokens]:
    """Each input's token vectors without the all-zero rows a batch padded it with
    (Infinity returns a page padded to its batch's longest)."""
    kept = []
    for embedding in embeddings:
        rows = np.asarray(embedding, dtype=np.float32)
        kept.append(rows[np.abs(rows).sum(axis=1) > 0])
    return kept


def _image_input_size(replica: Any) -> int | None:
    max_pixels = getattr(getattr(replica, "processor", None), "max_pixels", None)
    if isinstance(max_pixels, int):
        # Qwen2-VL's processors take a pixel budget (ColQwen2: 768 merged 28-px patches),
        # not a side: pages are decoded no larger than that budget's square
        return math.isqrt(max_pixels)
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
    if not isinstance(length, int):
        return None
    if _is_clap(model):
        # RoBERTa numbers positions from padding_idx + 1: 514 embeddings hold 512 tokens
        # (a 600-token query cut at 514 wedges the worker)
        return length - int(getattr(text_config, "pad_token_id", 1)) - 1
    return length


def _channels(clip: bytes) -> int | None:
    """A WAV clip's channel count from its header (None for other formats)."""
    if clip[:4] != b"RIFF" or clip[8:12] != b"WAVE" or len(clip) < 24:
        return None
    return int.from_bytes(clip[22:24], "little")


def _mend_chinese_clip(model: Any) -> None:
    """transformers 4.57's ``ChineseCLIPModel.get_text_features`` projects the text
    tower's pooler output, which that model never builds (None: every text query fails).
    Its ``forward`` projects the [CLS] token's last hidden state: so does this."""
    if type(model).__name__ != "ChineseCLIPModel" or model.text_model.pooler is not None:
        return

    def get_text_features(
        input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None, **_: Any
    ) -> Any:
        hidden = model.text_model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        return model.text_projection(hidden[:, 0, :])

    model.get_text_features = get_text_features


class _TextsPaddedToContext:
    """A processor whose texts are always padded to ``max_length`` (the rest as is)."""

    def __init__(self, processor: Any) -> None:
        self._processor = processor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._processor, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("text") is not None:
            kwargs["padding"] = "max_length"
        return self._processor(*args, **kwargs)


def _pad_siglip_texts(replica: Any) -> None:
    """SigLIP pools a text at its *last* position and was trained on texts padded to its
    whole context (64 tokens for the multilingual checkpoint). Infinity pads a batch to
    its longest text, so a shorter query's vector changed with its batch-mates and never
    equalled SigLIP's own (cos 0.81 for a 60-character query): pad every text to the
    context, as SigLIP's processor is meant to be called."""
    model = getattr(replica, "model", None)
    model_type = str(getattr(getattr(model, "config", None), "model_type", ""))
    processor = getattr(replica, "processor", None)
    if model_type.startswith("siglip") and processor is not None:
        replica.processor = _TextsPaddedToContext(processor)


def _is_clap(model: Any) -> bool:
    return "clap" in str(getattr(getattr(model, "config", None), "model_type", ""))


def refuse_fused_clap(source: str) -> None:
    """Fused CLAP checkpoints hang every Infinity call: refused before loading."""
    config_path = Path(source) / "config.json"
    if not config_path.is_file():
        return
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError):
        return  # the loader says what is wrong with it
    if "clap" in str(config.get("model_type", "")) and (config.get("audio_config") or {}).get(
        "enable_fusion"
    ):
        raise ModelUnavailable(
            f"{source} is a fused CLAP checkpoint, which Infinity cannot run (every call "
            "hangs): use an unfused one such as laion/clap-htsat-unfused"
        )


class _Lane:
    """One Infinity batch handler with its own threads, timeout and restart. The index and
    the queries each get one over the same weights, so a query that wedges or times out
    never fails the files being indexed, and queries never wait behind image batches."""

    def __init__(self, engine: Any, timeout_s: float, name: str) -> None:
        self.engine = engine
        self._timeout_s = timeout_s
        self._name = name
        self._restart_lock = asyncio.Lock()
        self.restarts = 0

    async def call(self, awaitable: Any) -> Any:
        """``(embeddings, usage)`` of an Infinity call."""
        try:
            embeddings, usage = await asyncio.wait_for(awaitable, timeout=self._timeout_s)
            raise_contained(embeddings)
            return embeddings, usage
        except TimeoutError:
            await self._restart()
            raise EmbeddingTimeout(
                f"the embedding engine did not answer within {self._timeout_s:g}s; it was restarted"
            ) from None
        except EmbeddingError:
            raise
        except Exception as exc:
            if _is_input_error(exc):
                raise ImageRejected(f"the model cannot take this image: {exc}") from exc
            if _is_audio_error(exc):
                raise AudioRejected(f"the model cannot take this sound: {exc}") from exc
            raise EmbeddingError(f"embedding failed: {exc}") from exc

    async def _restart(self) -> None:
        """Stop and start the batch handler: the threads of a wedged worker are replaced,
        the loaded weights are kept."""
        async with self._restart_lock:
            log.warning("restarting the %s embedding lane after a timeout", self._name)
            try:
                await asyncio.wait_for(self.engine.astop(), timeout=30)
            except Exception:  # a broken handler must not block the restart
                log.exception("stopping the wedged engine failed")
                self.engine.running = False
            await self.engine.astart()
            self.restarts += 1


def _is_input_error(exc: Exception) -> bool:
    """Infinity says an image is unusable (too small, unreadable) with ImageCorruption,
    raised before anything is queued: the image is at fault, not the engine."""
    return type(exc).__name__ == "ImageCorruption"


def _is_audio_error(exc: Exception) -> bool:
    """The same for sound (a wrong rate, bytes that are no audio)."""
    return type(exc).__name__ == "AudioCorruption"


def _own_copy(original: Image.Image, fitted: Image.Image) -> Image.Image:
    return fitted.copy() if fitted is original else fitted


def _query_twin(engine: Any) -> Any:
    """A second AsyncEmbeddingEngine over the same weights, with processors of its own (a
    fast tokenizer must not be used from two threads at once)."""
    twin = copy.copy(engine)
    twin.running = False
    twin._running_sepamore = None
    replicas = []
    for replica in engine._model_replicas:
        mine = copy.copy(replica)
        for attr in ("processor", "tokenizer"):
            if hasattr(replica, attr):
                setattr(mine, attr, copy.deepcopy(getattr(replica, attr)))
        contain_failures(mine)  # its own steps, with its own processors
        replicas.append(mine)
    twin._model_replicas = replicas
    return twin


class InfinityEngine:
    """The default EmbeddingEngine, backed by ``infinity_emb.AsyncEmbeddingEngine``: the
    indexing lane; ``for_queries()`` is the lane searches use."""

    def __init__(
        self,
        settings: EmbeddingSettings,
        *,
        cache_dir: Path | None = None,
        setting: str = "embedding.model",
    ) -> None:
        """``setting``: where the configuration names this model (what to change when it
        cannot be found)."""
        self._settings = settings
        self._setting = setting
        self._source = resolve_model(settings.model)
        self._model_id = model_label(settings.model)
        self._cache_dir = cache_dir
        self._lane: _Lane | None = None
        self._query_lane: _Lane | None = None
        self._dim: int | None = None
        self._multivector = False
        self._input_size = 224
        self._relevance_floor = relevance_floor(settings)

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def relevance_floor(self) -> float | None:
        return self._relevance_floor

    @property
    def dim(self) -> int:
        if self._dim is None:
            raise ModelUnavailable("the embedding engine has not been started")
        return self._dim

    @property
    def input_size(self) -> int:
        return self._input_size

    @property
    def multivector(self) -> bool:
        """Whether the model gives a vector per token (ColPali, ColQwen2: document pages
        through ``embed_pages`` and ``embed_query_tokens``) rather than one per input."""
        return self._multivector

    @property
    def restarts(self) -> int:
        return self._lane.restarts if self._lane else 0

    @property
    def sampling_rate(self) -> int | None:
        replicas = getattr(self._engine, "_model_replicas", None) or [None]
        rate = getattr(replicas[0], "sampling_rate", None)
        return int(rate) if isinstance(rate, int) else None

    @property
    def _engine(self) -> Any:
        return self._lane.engine if self._lane else None

    @property
    def device(self) -> str:
        replicas = getattr(self._engine, "_model_replicas", None) or []
        model = getattr(replicas[0], "model", None) if replicas else None
        return str(getattr(model, "device", "unknown"))

    async def start(self) -> None:
        if self._lane is not None:
            return
        engine = await asyncio.to_thread(self._load)
        await engine.astart()
        self._lane = _Lane(engine, self._settings.timeout_s, "indexing")
        try:
            probe, _ = await self._lane.call(engine.embed(sentences=["msearch"]))
        except BaseException as exc:
            # Infinity's worker threads would outlive the engine and hold the process open
            # at exit (a 'msearch serve' that cannot embed would never end)
            await self.stop()
            if isinstance(exc, EmbeddingError) and not isinstance(exc, ModelUnavailable):
                raise ModelUnavailable(
                    f"{self.model_id} loads but cannot embed: {exc.message}"
                ) from exc
            raise
        shape = np.shape(probe[0])
        self._multivector = len(shape) == 2
        self._dim = int(shape[-1])
        replicas = getattr(engine, "_model_replicas", None) or [None]
        self._input_size = _image_input_size(replicas[0]) or self._input_size
        log.info(
            "embedding model %s loaded (dim %d, device %s)", self.model_id, self._dim, self.device
        )

    def for_queries(self) -> EmbeddingEngine:
        return _QueryEngine(self)

    async def _query_lane_started(self) -> _Lane:
        lane = self._require_lane()
        if self._query_lane is None:
            twin = await asyncio.to_thread(_query_twin, lane.engine)
            if self._query_lane is None:
                await twin.astart()
                self._query_lane = _Lane(twin, self._settings.timeout_s, "query")
        return self._query_lane

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
        source = self._source
        if is_hub_id(source):
            source = cached_snapshot(source) or source
        if is_hub_id(source):
            reason = probe_hub(source)
            if reason is not None:
                raise ModelUnavailable(
                    unreachable_model(self._settings.model, reason, self._setting)
                )
        refuse_fused_clap(source)
        refuse_adapter(source, self._setting)
        if may_be_col_model(source, on_disk=not is_hub_id(source)):
            mend_colpali_engine()
        options: dict[str, Any] = {
            "model_name_or_path": source,
            "engine": "torch",
            "device": resolve_device(self._settings.device),
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
            # a download may only now show what it is
            refuse_adapter(cached_snapshot(self._source) or source, self._setting)
            raise ModelUnavailable(
                f"cannot load embedding model {self._settings.model!r} ({self._source}): {exc}. "
                f"Set {self._setting} to a local model directory, or 'demo' (see README)."
            ) from exc
        self._fix_text_truncation(engine)
        self._place_audio_models(engine)
        for replica in getattr(engine, "_model_replicas", []):
            _mend_chinese_clip(getattr(replica, "model", None))
            _pad_siglip_texts(replica)
            contain_failures(replica)
        return engine

    def _place_audio_models(self, engine: Any) -> None:
        """Infinity loads CLAP and leaves it on the CPU whatever the device: move it."""
        device = resolve_device(self._settings.device)
        for replica in getattr(engine, "_model_replicas", []):
            model = getattr(replica, "model", None)
            if model is not None and _is_clap(model) and device != "cpu":
                replica.model = model.to(device)

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
        lanes = [self._lane, self._query_lane]
        self._lane = self._query_lane = None
        for lane in lanes:
            if lane is not None:
                await lane.engine.astop()

    async def embed_texts(self, texts: list[str]) -> list[list[float]]:
        return await self._embed_texts(self._require_lane(), texts)

    async def embed_images(self, images: list[Image.Image]) -> list[list[float]]:
        return await self._embed_images(self._require_lane(), images)

    async def embed_pages(self, images: list[Image.Image]) -> list[PageTokens]:
        """A multi-vector model's vectors of each page image, one per token it kept."""
        return await self._embed_pages(self._require_lane(), images)

    async def embed_query_tokens(self, texts: list[str]) -> list[QueryTokens]:
        return await self._embed_query_tokens(self._require_lane(), texts)

    async def embed_audio(self, clips: list[bytes]) -> list[list[float]]:
        return await self._embed_audio(self._require_lane(), clips)

    async def _embed_audio(self, lane: _Lane, clips: list[bytes]) -> list[list[float]]:
        if not clips:
            return []
        if self.sampling_rate is None:
            raise ModelUnavailable(f"{self.model_id} does not take sound")
        if any(_channels(clip) not in (None, 1) for clip in clips):
            # the extractor pads a 2-D array: it asks for terabytes and the worker wedges
            raise AudioRejected("the sound model takes mono clips only")
        with timed(EMBED_SECONDS, "audio"):
            embeddings, _ = await lane.call(lane.engine.audio_embed(audios=list(clips)))
        return [list(map(float, e)) for e in embeddings]

    async def _embed_pages(self, lane: _Lane, images: list[Image.Image]) -> list[PageTokens]:
        self._require_multivector()
        return _token_vectors(await self._image_arrays(lane, images))

    async def _embed_query_tokens(self, lane: _Lane, texts: list[str]) -> list[QueryTokens]:
        self._require_multivector()
        return [rows.tolist() for rows in _token_vectors(await self._text_arrays(lane, texts))]

    async def _embed_texts(self, lane: _Lane, texts: list[str]) -> list[list[float]]:
        self._require_single_vector()
        return [list(map(float, e)) for e in await self._text_arrays(lane, texts)]

    async def _text_arrays(self, lane: _Lane, texts: list[str]) -> list[Any]:
        if not texts:
            return []
        with timed(EMBED_SECONDS, "text"):
            embeddings, _ = await lane.call(lane.engine.embed(sentences=list(texts)))
        return list(embeddings)

    async def _embed_images(self, lane: _Lane, images: list[Image.Image]) -> list[list[float]]:
        self._require_single_vector()
        return [list(map(float, e)) for e in await self._image_arrays(lane, images)]

    async def _image_arrays(self, lane: _Lane, images: list[Image.Image]) -> list[Any]:
        if not images:
            return []
        for image in images:
            if not isinstance(image, Image.Image) or image.mode != "RGB":
                raise EmbeddingError("embed_images takes decoded RGB PIL images only")
        # Infinity gets images of its own: a caller that is cancelled (Ctrl-C, a timeout)
        # closes its images while Infinity's threads may still be reading them.
        fitted = [_own_copy(image, fit_for_model(image, self._input_size)) for image in images]
        with timed(EMBED_SECONDS, "image"):
            embeddings, _ = await lane.call(lane.engine.image_embed(images=fitted))
        return list(embeddings)

    def _require_single_vector(self) -> None:
        if self._multivector:
            raise ModelUnavailable(
                f"{self.model_id} gives a vector per token: it embeds document pages "
                "(documents.model), not pictures or queries of the visual search"
            )

    def _require_multivector(self) -> None:
        if not self._multivector:
            raise ModelUnavailable(f"{self.model_id} gives one vector per input, not per token")

    def _require_lane(self) -> _Lane:
        if self._lane is None:
            raise ModelUnavailable("the embedding engine is not running")
        return self._lane


class _QueryEngine:
    """The query lane of an InfinityEngine, as an EmbeddingEngine of its own. Its batch
    handler starts with the first query; starting and stopping belong to the owner."""

    def __init__(self, owner: InfinityEngine) -> None:
        self._owner = owner

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

    @property
    def multivector(self) -> bool:
        return self._owner.multivector

    @property
    def restarts(self) -> int:
        lane = self._owner._query_lane
        return lane.restarts if lane else 0

    async def start(self) -> None:
        await self._owner.start()

    async def stop(self) -> None:
        """The owner stops both lanes."""

    def for_queries(self) -> EmbeddingEngine:
        return self

    async def embed_texts(self, texts: list[str]) -> list[list[float]]:
        return await self._owner._embed_texts(await self._owner._query_lane_started(), texts)

    async def embed_images(self, images: list[Image.Image]) -> list[list[float]]:
        return await self._owner._embed_images(await self._owner._query_lane_started(), images)

    async def embed_query_tokens(self, texts: list[str]) -> list[QueryTokens]:
        lane = await self._owner._query_lane_started()
        return await self._owner._embed_query_tokens(lane, texts)

    async def embed_pages(self, images: list[Image.Image]) -> list[PageTokens]:
        return await self._owner._embed_pages(await self._owner._query_lane_started(), images)

    @property
    def sampling_rate(self) -> int | None:
        return self._owner.sampling_rate

    async def embed_audio(self, clips: list[bytes]) -> list[list[float]]:
        return await self._owner._embed_audio(await self._owner._query_lane_started(), clips)
