"""Where the repository and the tests' build outputs are."""

from __future__ import annotations

import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "test-models"


def script_digest(*names: str) -> str:
    """Of the scripts that build a test model: the model is rebuilt when they change."""
    digest = hashlib.sha1()
    for name in names:
        digest.update((ROOT / "scripts" / name).read_bytes())
    return digest.hexdigest()[:10]
