"""Content fingerprints: how a moved or unchanged file is recognised without re-embedding."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def content_fingerprint(path: Path) -> str:
    """BLAKE2b of the whole content (prefixed with the size); reading is far cheaper than
    decoding, so a full hash costs little next to indexing and never confuses two files."""
    digest = hashlib.blake2b(digest_size=20)
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            size += len(chunk)
            digest.update(chunk)
    return f"{size:x}-{digest.hexdigest()}"
