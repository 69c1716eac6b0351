"""Randomly initialised weights for the enhancement stage, in the files and formats the real
ones come in (no download is possible here, and tests must never try).

    python scripts/make_enhance_weights.py OUT_DIR [--only realesrgan]

Writes RealESRGAN_x4plus.pth and RealESRGAN_x2plus.pth ({"params_ema": ...}, RRDBNet 64
features, 23 blocks), GFPGANv1.4.pth ({"params_ema": ...}, GFPGANv1Clean, channel multiplier
2) and facexlib's detection_Resnet50_Final.pth and parsing_parsenet.pth (plain state dicts).
The architectures are the real ones; only the numbers are random (seeded), so outputs are
noise-like but shapes, sizes, timings and every code path are those of the real models.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build(out: Path, *, faces: bool = True) -> Path:
    from msearch.media.torchvision_compat import import_torchvision

    import_torchvision()
    from basicsr.archs.rrdbnet_arch import RRDBNet

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    for scale in (4, 2):
        target = out / f"RealESRGAN_x{scale}plus.pth"
        if not target.exists():
            net = RRDBNet(
                num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32, scale=scale
            )
            _save({"params_ema": net.state_dict()}, target)
    if not faces:
        return out
    from facexlib.detection.retinaface import RetinaFace
    from facexlib.parsing.parsenet import ParseNet
    from gfpgan.archs.gfpganv1_clean_arch import GFPGANv1Clean

    if not (out / "GFPGANv1.4.pth").exists():
        gfpgan = GFPGANv1Clean(
            out_size=512,
            num_style_feat=512,
            channel_multiplier=2,
            decoder_load_path=None,
            fix_decoder=False,
            num_mlp=8,
            input_is_latent=True,
            different_w=True,
            narrow=1,
            sft_half=True,
        )
        _save({"params_ema": gfpgan.state_dict()}, out / "GFPGANv1.4.pth")
    if not (out / "detection_Resnet50_Final.pth").exists():
        _save(
            RetinaFace(network_name="resnet50", half=False, device="cpu").state_dict(),
            out / "detection_Resnet50_Final.pth",
        )
    if not (out / "parsing_parsenet.pth").exists():
        _save(
            ParseNet(in_size=512, out_size=512, parsing_ch=19).state_dict(),
            out / "parsing_parsenet.pth",
        )
    return out


def _save(state: object, target: Path) -> None:
    partial = target.with_suffix(".part")
    torch.save(state, partial)
    partial.replace(target)  # a crash never leaves a truncated weight file behind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--only", choices=["realesrgan"], help="skip the face models")
    args = parser.parse_args()
    build(args.out, faces=args.only is None)
    for path in sorted(args.out.glob("*.pth")):
        print(f"{path.name}: {path.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
