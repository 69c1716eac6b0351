"""The enhancement stage through the real RealESRGANer / GFPGANer objects, with randomly
initialised networks saved as local weight files (scripts/make_enhance_weights.py)."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from support.media_factory import noise
from support.paths import BUILD, ROOT, script_digest
from support.video_factory import segments_video

from msearch.config import EmbeddingSettings, EnhancementSettings, Settings
from msearch.embedding.infinity import InfinityEngine
from msearch.media.enhance import ImageEnhancer
from msearch.media.torchvision_compat import import_torchvision, nms
from msearch.services import Services, build_services


@pytest.fixture(scope="session")
def weights_dir() -> Path:
    """Random Real-ESRGAN, GFPGAN and facexlib weights, built once (cached under build/)."""
    out = BUILD / f"enhance-weights-{script_digest('make_enhance_weights.py')}"
    if not (out / "parsing_parsenet.pth").is_file():
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "make_enhance_weights.py"), str(out)],
            check=True,
            capture_output=True,
        )
    return out


def _settings(weights: Path | None, **extra: Any) -> EnhancementSettings:
    return EnhancementSettings(enabled=True, weights_dir=weights, **extra)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def enhanced_services(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine, weights_dir: Path
) -> Callable[..., Any]:
    running: list[Services] = []

    async def start(**enhancement: Any) -> Services:
        settings = make_settings(
            enhancement={
                "enabled": True,
                "weights_dir": weights_dir,
                "model": "RealESRGAN_x2plus",
                **enhancement,
            }
        )
        services = await build_services(settings, engine=tiny_engine)
        running.append(services)
        return services

    start.running = running  # type: ignore[attr-defined]
    return start


@pytest.fixture
async def close_services(enhanced_services: Any) -> AsyncIterator[None]:
    yield
    for services in enhanced_services.running:
        await services.aclose()


async def test_output_size_follows_the_model_scale(weights_dir: Path) -> None:
    image = noise(40, 30, seed=1)
    for model, scale in (("RealESRGAN_x4plus", 4), ("RealESRGAN_x2plus", 2)):
        enhancer = ImageEnhancer(
            _settings(weights_dir, model=model, tile=0), device="cpu", target_side=1000
        )
        try:
            out, done = await enhancer.enhance(image)
        finally:
            enhancer.close()
        assert done.applied and done.reason is None, done
        assert out.size == (40 * scale, 30 * scale)
        assert done.size_out == out.size and done.seconds > 0
        assert done.steps == [f"{model}: x{scale}"]
    # ... then downscaled to what the embedder needs, the full result kept in the cache
    enhancer = ImageEnhancer(
        _settings(weights_dir, model="RealESRGAN_x4plus", tile=32), device="cpu", target_side=64
    )
    try:
        out, done = await enhancer.enhance(
            noise(50, 40, seed=2), save_to=weights_dir.parent / "tmp-enhanced.jpg"
        )
    finally:
        enhancer.close()
    assert done.size_out == (200, 160) and min(out.size) == 64 and out.size == (80, 64)
    with Image.open(weights_dir.parent / "tmp-enhanced.jpg") as saved:
        assert saved.size == (200, 160)
    assert "tile 32" in done.steps[0]


async def test_small_images_are_enhanced_in_the_pipeline_and_originals_untouched(
    enhanced_services: Any, close_services: None, media_dir: Path
) -> None:
    services = await enhanced_services(min_side=100)
    small, large = media_dir / "small.png", media_dir / "large.png"
    noise(64, 48, seed=3).save(small)
    noise(160, 120, seed=4).save(large)
    before = {p: _digest(p) for p in (small, large)}
    records = await services.orchestrator.batch_process_files([small, large])
    by_name = {Path(r.path).name: r for r in records}
    assert all(r.status == "indexed" for r in records), [r.error for r in records]
    enhanced = by_name["small.png"]
    assert enhanced.enhanced is True
    info = enhanced.enhancement
    assert info is not None and info["applied"] and info["seconds"] > 0
    assert info["steps"] == ["RealESRGAN_x2plus: x2, tile 256"] and info["output"] == "128x96"
    assert enhanced.width == 64 and enhanced.height == 48, "metadata describes the original"
    copy = services.adapter.enhanced_path(enhanced.id)
    with Image.open(copy) as saved:
        assert saved.size == (128, 96)
    assert by_name["large.png"].enhanced is False  # the min_side gate
    assert by_name["large.png"].enhancement is None
    assert {p: _digest(p) for p in (small, large)} == before, "originals are never modified"
    stored = await services.adapter.get_file(enhanced.id)
    assert stored is not None and stored.public()["enhancement"] == info

    removed = await services.reset("all")
    assert removed["cache_files"] >= 2 and not copy.exists()
    assert {p: _digest(p) for p in (small, large)} == before


async def test_enhancement_runs_with_the_default_device_setting(
    make_settings: Callable[..., Settings],
    tiny_engine: InfinityEngine,
    tiny_clip_dir: Path,
    weights_dir: Path,
    media_dir: Path,
) -> None:
    """embedding.device is "auto" unless a user changes it; torch refuses that string, so
    the enhancer once recorded a RuntimeError for every image instead of enhancing it."""
    settings = make_settings(
        enhancement={
            "enabled": True,
            "weights_dir": weights_dir,
            "model": "RealESRGAN_x2plus",
            "min_side": 100,
        }
    )
    settings = settings.model_copy(
        update={"embedding": EmbeddingSettings(model=str(tiny_clip_dir), timeout_s=60)}
    )
    assert settings.embedding.device == "auto"
    noise(64, 48, seed=5).save(media_dir / "small.png")
    services = await build_services(settings, engine=tiny_engine)
    try:
        [record] = await services.orchestrator.batch_process_files([media_dir / "small.png"])
    finally:
        await services.aclose()
    assert record.status == "indexed" and record.enhanced is True, record.enhancement
    assert record.enhancement is not None and record.enhancement["reason"] is None


async def test_missing_weights_leave_the_file_indexed_unenhanced_with_the_reason(
    enhanced_services: Any, close_services: None, media_dir: Path, tmp_path: Path, chdir_tmp: Path
) -> None:
    empty = tmp_path / "no-weights"
    empty.mkdir()
    services = await enhanced_services(weights_dir=empty, face_restore=True)
    path = media_dir / "tiny.png"
    noise(32, 32, seed=5).save(path)
    [record] = await services.orchestrator.batch_process_files([path])
    assert record.status == "indexed" and record.enhanced is False
    reason = (record.enhancement or {})["reason"]
    assert "missing weights" in reason and "RealESRGAN_x2plus.pth" in reason
    assert "GFPGANv1.4.pth" in reason and "detection_Resnet50_Final.pth" in reason
    assert sorted(p.name for p in chdir_tmp.iterdir()) == sorted(
        p.name for p in tmp_path.iterdir()
    ), "nothing may be downloaded (or created)"
    assert not (chdir_tmp / "gfpgan").exists() and not (chdir_tmp / "facexlib").exists()


async def test_a_failure_retries_with_a_smaller_tile_then_falls_back(
    weights_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from basicsr.archs.rrdbnet_arch import RRDBNet

    real_forward = RRDBNet.forward
    failures = {"left": 1}

    def flaky(self: Any, x: torch.Tensor) -> torch.Tensor:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_forward(self, x)

    monkeypatch.setattr(RRDBNet, "forward", flaky)
    enhancer = ImageEnhancer(
        _settings(weights_dir, model="RealESRGAN_x2plus", tile=64), device="cpu", target_side=1000
    )
    image = noise(48, 48, seed=6)
    try:
        out, done = await enhancer.enhance(image)
        assert done.applied and done.steps == ["RealESRGAN_x2plus: x2, tile 32"]
        assert out.size == (96, 96)

        failures["left"] = 10**6  # fails every time now
        out, done = await enhancer.enhance(image)
        assert not done.applied and out is image
        assert done.reason is not None and "out of memory" in done.reason
        assert "tile 64" in done.reason and "tile 32" in done.reason
    finally:
        enhancer.close()


async def test_concurrent_calls_give_the_results_of_sequential_calls(weights_dir: Path) -> None:
    enhancer = ImageEnhancer(
        _settings(weights_dir, model="RealESRGAN_x2plus", tile=24), device="cpu", target_side=1000
    )
    images = [noise(40 + 8 * i, 32, seed=10 + i) for i in range(4)]
    try:
        sequential = [np.asarray((await enhancer.enhance(im))[0]) for im in images]
        together = await asyncio.gather(*(enhancer.enhance(im) for im in images))
    finally:
        enhancer.close()
    for alone, (image, done) in zip(sequential, together, strict=True):
        assert done.applied
        assert np.array_equal(alone, np.asarray(image)), "per-call state leaked between calls"


async def test_face_restoration_goes_through_gfpgan(weights_dir: Path, chdir_tmp: Path) -> None:
    enhancer = ImageEnhancer(
        _settings(
            weights_dir, model="RealESRGAN_x2plus", face_restore=True, only_center_face=True
        ),  # random detector weights see faces everywhere
        device="cpu",
        target_side=1000,
    )
    try:
        out, done = await enhancer.enhance(noise(64, 64, seed=7))
    finally:
        enhancer.close()
    assert done.applied, done.reason
    assert done.steps[0].startswith("GFPGAN v1.4:") and "resized background" in done.steps[0]
    assert out.size == (128, 128)
    assert not (chdir_tmp / "gfpgan").exists(), "facexlib weights come from weights_dir"


async def test_small_video_keyframes_are_enhanced(
    enhanced_services: Any, close_services: None, media_dir: Path
) -> None:
    services = await enhanced_services(min_side=100)
    clip = media_dir / "small.mp4"
    segments_video(clip, [1.5, 1.5], size="96x72")
    [record] = await services.orchestrator.batch_process_files([clip])
    assert record.status == "indexed", record.error
    info = record.enhancement
    assert record.enhanced and info is not None
    assert info["frames"] == info["frames_enhanced"] == len(record.scenes) == 2
    assert all(services.adapter.enhanced_path(record.id, s.index).is_file() for s in record.scenes)


def test_pure_nms_matches_a_brute_force_reference() -> None:
    torchvision = import_torchvision()
    rng = np.random.RandomState(0)
    corners = rng.uniform(0, 100, (60, 2))
    boxes = torch.tensor(
        np.hstack([corners, corners + rng.uniform(5, 40, (60, 2))]), dtype=torch.float32
    )
    scores = torch.tensor(rng.uniform(0, 1, 60), dtype=torch.float32)

    def iou(a: torch.Tensor, b: torch.Tensor) -> float:
        w = max(0.0, float(min(a[2], b[2]) - max(a[0], b[0])))
        h = max(0.0, float(min(a[3], b[3]) - max(a[1], b[1])))
        area = float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]))
        return w * h / (area - w * h)

    expected: list[int] = []
    for i in scores.argsort(descending=True).tolist():
        if all(iou(boxes[i], boxes[k]) <= 0.4 for k in expected):
            expected.append(i)
    assert nms(boxes, scores, 0.4).tolist() == expected
    assert torchvision.ops.nms(boxes, scores, 0.4).tolist() == expected
    import torchvision.transforms.functional_tensor  # basicsr's import works


def test_installed_torchvision_does_not_break_the_embedding_stack() -> None:
    # transformers imports torchvision whenever it is installed; without msearch's import
    # hook that import fails here (CUDA torchvision next to the CPU torch) and takes
    # CLIPModel, hence Infinity, down with it.
    code = (
        "import msearch; from transformers import CLIPModel; import torchvision; "
        "print(CLIPModel.__name__, torchvision.__version__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("CLIPModel")
