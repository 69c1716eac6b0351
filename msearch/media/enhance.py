"""Optional enhancement before embedding: Real-ESRGAN super-resolution for small images and
keyframes, GFPGAN face restoration when enabled.

The heavy libraries (torch, torchvision, basicsr, realesrgan, gfpgan, facexlib) are imported
here only, and only when the stage is enabled and first used. Models load once from
``enhancement.weights_dir`` and stay resident; nothing is ever downloaded. Inference runs on
one dedicated thread and under a lock (RealESRGANer and GFPGANer keep per-call state on the
instance). A failure (out-of-memory included) is retried once with a smaller tile, then the
original image is used and the reason recorded. Originals are never modified: enhanced
copies are written to the cache.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from msearch.config import EnhancementSettings
from msearch.devices import resolve_device
from msearch.errors import MSearchError

log = logging.getLogger(__name__)

FACE_WEIGHTS = ("GFPGANv1.4.pth", "detection_Resnet50_Final.pth", "parsing_parsenet.pth")
_SCALES = {"RealESRGAN_x4plus": 4, "RealESRGAN_x2plus": 2}


class EnhancementUnavailable(MSearchError):
    code = "enhancement_unavailable"
    http_status = 503


@dataclass
class Enhancement:
    """What the stage did to one image (recorded in the file's metadata)."""

    applied: bool
    steps: list[str] = field(default_factory=list)
    seconds: float = 0.0
    reason: str | None = None
    size_in: tuple[int, int] | None = None
    size_out: tuple[int, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "steps": self.steps,
            "seconds": round(self.seconds, 3),
            "reason": self.reason,
            "input": f"{self.size_in[0]}x{self.size_in[1]}" if self.size_in else None,
            "output": f"{self.size_out[0]}x{self.size_out[1]}" if self.size_out else None,
        }


class _FailureRecorder:
    """Wraps a network so an error the library catches and prints (RealESRGANer's tiles,
    GFPGANer's faces) is still seen: the output would otherwise be silently wrong."""

    def __init__(self, network: Any) -> None:
        self.network = network
        self.error: BaseException | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.network(*args, **kwargs)
        except RuntimeError as exc:
            self.error = exc
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.network, name)


@dataclass
class _Models:
    upsampler: Any  # RealESRGANer
    upsampler_net: _FailureRecorder
    restorer: Any | None  # GFPGANer
    restorer_net: _FailureRecorder | None


def _quiet(*args: Any, **kwargs: Any) -> None:
    log.debug(" ".join(str(a) for a in args))


class ImageEnhancer:
    def __init__(self, settings: EnhancementSettings, *, device: str, target_side: int) -> None:
        self._settings = settings
        self._device = resolve_device(device)  # torch refuses "auto"
        self._target_side = target_side
        self._scale = _SCALES[settings.model]
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="msearch-enhance")
        self._lock = threading.Lock()
        self._models: _Models | None = None

    def wants(self, width: int | None, height: int | None) -> bool:
        """Only images (and video frames) whose short side is below ``min_side``."""
        return bool(width and height) and min(width or 0, height or 0) < self._settings.min_side

    def missing_weights(self) -> list[Path]:
        weights = self._settings.weights_dir
        if weights is None:
            return [Path(f"{self._settings.model}.pth")]
        names = [f"{self._settings.model}.pth"]
        if self._settings.face_restore:
            names += FACE_WEIGHTS
        return [weights / n for n in names if not (weights / n).is_file()]

    async def enhance(
        self, image: Image.Image, *, save_to: Path | None = None
    ) -> tuple[Image.Image, Enhancement]:
        """The enhanced image, downscaled to what the embedder needs (its short side at
        most ``target_side``), and what was done; the original image when the stage could
        not run, with the reason. ``save_to`` keeps the full-size result in the cache."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._enhance_sync, image, save_to)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._models = None

    # on the enhancement thread ---------------------------------------------------------

    def _enhance_sync(
        self, image: Image.Image, save_to: Path | None
    ) -> tuple[Image.Image, Enhancement]:
        started = time.perf_counter()
        with self._lock:
            try:
                models = self._load()
            except EnhancementUnavailable as exc:
                return image, Enhancement(
                    False,
                    seconds=time.perf_counter() - started,
                    reason=exc.message,
                    size_in=image.size,
                )
            errors: list[str] = []
            for tile in self._tiles():
                try:
                    result, steps = self._run(models, image.convert("RGB"), tile)
                except Exception as exc:  # OOM is a RuntimeError; anything else falls back too
                    errors.append(f"tile {tile or 'off'}: {type(exc).__name__}: {exc}")
                    log.warning("enhancement failed (%s)", errors[-1])
                    self._free_memory()
                    continue
                if save_to is not None:
                    save_to.parent.mkdir(parents=True, exist_ok=True)
                    result.save(save_to, "JPEG", quality=92)
                done = Enhancement(
                    True,
                    steps,
                    time.perf_counter() - started,
                    size_in=image.size,
                    size_out=result.size,
                )
                return self._for_embedder(result), done
        return image, Enhancement(
            False,
            seconds=time.perf_counter() - started,
            reason="enhancement failed, original used: " + "; ".join(errors),
            size_in=image.size,
        )

    def _tiles(self) -> list[int]:
        """The configured tile, then a smaller one (0, no tiling, retries with 256)."""
        tile = self._settings.tile
        return [tile, max(32, tile // 2) if tile else 256]

    def _for_embedder(self, image: Image.Image) -> Image.Image:
        short = min(image.size)
        if short <= self._target_side:
            return image
        factor = self._target_side / short
        size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
        return image.resize(size, Image.Resampling.LANCZOS)

    def _run(self, models: _Models, image: Image.Image, tile: int) -> tuple[Image.Image, list[str]]:
        import torch

        bgr = np.ascontiguousarray(np.asarray(image)[:, :, ::-1])
        models.upsampler.tile_size = tile
        recorders = [r for r in (models.restorer_net, models.upsampler_net) if r is not None]
        for recorder in recorders:
            recorder.error = None
        steps: list[str] = []
        try:
            with torch.inference_mode():
                if models.restorer is not None:
                    _, faces, output = models.restorer.enhance(
                        bgr,
                        has_aligned=False,
                        only_center_face=self._settings.only_center_face,
                        paste_back=True,
                    )
                    background = (
                        "Real-ESRGAN background"
                        if models.restorer.bg_upsampler
                        else "resized background"
                    )
                    steps.append(
                        f"GFPGAN v1.4: {len(faces)} face(s) restored, x{self._scale}, {background}"
                    )
                else:
                    output, _ = models.upsampler.enhance(bgr, outscale=self._scale)
                    steps.append(
                        f"{self._settings.model}: x{self._scale}"
                        + (f", tile {tile}" if tile else "")
                    )
        except Exception as exc:
            # What the library swallowed is the real cause of what it raised next.
            recorded = next((r.error for r in recorders if r.error is not None), None)
            if recorded is not None:
                raise recorded from exc
            raise
        recorded = next((r.error for r in recorders if r.error is not None), None)
        if recorded is not None:
            raise recorded
        return Image.fromarray(np.ascontiguousarray(output[:, :, ::-1])), steps

    def _free_memory(self) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _load(self) -> _Models:
        if self._models is not None:
            return self._models
        missing = self.missing_weights()
        if missing:
            where = self._settings.weights_dir or "enhancement.weights_dir (not set)"
            raise EnhancementUnavailable(
                f"missing weights in {where}: {', '.join(p.name for p in missing)} "
                "(msearch never downloads them; see the README)"
            )
        try:
            self._models = self._build()
        except ImportError as exc:
            raise EnhancementUnavailable(
                f"the enhancement libraries are not installed ({exc}); "
                "pip install 'msearch[enhance]'"
            ) from exc
        except Exception as exc:
            raise EnhancementUnavailable(
                f"the enhancement models could not be loaded: {type(exc).__name__}: {exc}"
            ) from exc
        return self._models

    def _build(self) -> _Models:
        from msearch.media.torchvision_compat import import_torchvision

        import_torchvision()
        import gfpgan.utils
        import realesrgan.utils
        from basicsr.archs.rrdbnet_arch import RRDBNet
        from facexlib.utils.face_restoration_helper import FaceRestoreHelper

        weights = self._settings.weights_dir
        assert weights is not None
        realesrgan.utils.print = _quiet  # their per-tile and per-face chatter
        gfpgan.utils.print = _quiet
        gpu = self._device.startswith("cuda")
        network = RRDBNet(
            num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32, scale=self._scale
        )
        upsampler = realesrgan.utils.RealESRGANer(
            scale=self._scale,
            model_path=str(weights / f"{self._settings.model}.pth"),
            model=network,
            tile=self._settings.tile,
            tile_pad=self._settings.tile_pad,
            pre_pad=0,
            half=gpu,
            device=self._device,
        )
        upsampler_net = _FailureRecorder(upsampler.model)
        upsampler.model = upsampler_net
        restorer = restorer_net = None
        if self._settings.face_restore:
            # GFPGANer looks for facexlib's detector and parser under ./gfpgan/weights and
            # downloads them when absent: point it at weights_dir (checked above) instead.
            def local_helper(*args: Any, **kwargs: Any) -> Any:
                kwargs["model_rootpath"] = str(weights)
                return FaceRestoreHelper(*args, **kwargs)

            gfpgan.utils.FaceRestoreHelper = local_helper
            restorer = gfpgan.utils.GFPGANer(
                model_path=str(weights / "GFPGANv1.4.pth"),
                upscale=self._scale,
                arch="clean",
                channel_multiplier=2,
                bg_upsampler=upsampler if gpu else None,
                device=self._device,
            )
            restorer_net = _FailureRecorder(restorer.gfpgan)
            restorer.gfpgan = restorer_net
        log.info(
            "enhancement models loaded on %s: %s%s",
            self._device,
            self._settings.model,
            " + GFPGAN v1.4" if restorer is not None else "",
        )
        return _Models(upsampler, upsampler_net, restorer, restorer_net)
