"""Check the GPU path of sound: CLAP on CUDA through Infinity (which leaves CLAP on the CPU;
msearch moves it), vectors equal to an fp32 CPU computation, windows per second.

    python scripts/check_gpu_audio.py MODEL_DIR [--windows 256]

Last line: {"device", "dtype", "gpu", "audio_cosine_min", "text_cosine_min",
"windows_per_s", "audio_s_per_s"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import numpy as np
import torch

import msearch  # noqa: F401  # its import hook keeps an installed torchvision from breaking transformers
from msearch.config import EmbeddingSettings
from msearch.embedding.infinity import InfinityEngine
from msearch.media.audio import wav_bytes

RATE = 48_000


def _clips(n: int, seconds: float = 10.0) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * RATE)) / RATE
    return [
        (
            0.3 * np.sin(2 * np.pi * rng.uniform(80, 4000) * t) + 0.05 * rng.standard_normal(t.size)
        ).astype(np.float32)
        for _ in range(n)
    ]


async def main(model_dir: Path, windows: int, device: str) -> None:
    from transformers import ClapModel, ClapProcessor

    engine = InfinityEngine(
        EmbeddingSettings(model=str(model_dir), device=device, timeout_s=600, batch_size=32)
    )
    await engine.start()
    replica = engine._engine._model_replicas[0]
    param = next(replica.model.parameters())
    clips = _clips(8)
    texts = ["a dog barking", "rain on a tin roof while a siren passes in the distance " * 4]
    ours_audio = np.array(await engine.embed_audio([wav_bytes(c, RATE) for c in clips]))
    ours_text = np.array(await engine.embed_texts(texts))
    model = ClapModel.from_pretrained(str(model_dir)).eval()
    processor = ClapProcessor.from_pretrained(str(model_dir))
    with torch.no_grad():
        features = processor.feature_extractor(clips, sampling_rate=RATE, return_tensors="pt")
        ref_audio = model.get_audio_features(**features)
        ref_text = model.get_text_features(
            **processor.tokenizer(texts, padding=True, return_tensors="pt")
        )
    ref_audio = torch.nn.functional.normalize(ref_audio, dim=-1).numpy()
    ref_text = torch.nn.functional.normalize(ref_text, dim=-1).numpy()
    many = [wav_bytes(c, RATE) for c in _clips(windows)]
    await engine.embed_audio(many[:32])
    started = time.perf_counter()
    await asyncio.gather(*[engine.embed_audio(many[i : i + 32]) for i in range(0, windows, 32)])
    rate = windows / (time.perf_counter() - started)
    await engine.stop()
    print(
        json.dumps(
            {
                "device": str(param.device),
                "dtype": str(param.dtype).removeprefix("torch."),
                "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                "audio_cosine_min": round(float((ours_audio * ref_audio).sum(1).min()), 5),
                "text_cosine_min": round(float((ours_text * ref_text).sum(1).min()), 5),
                "windows_per_s": round(rate, 1),
                "audio_s_per_s": round(rate * 10, 1),
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--windows", type=int, default=256)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    args = parser.parse_args()
    asyncio.run(main(args.model_dir, args.windows, args.device))
