"""How far down a model's text-query scores still mean a match.

A contrastive model ranks every image for any query, so a query for what the library does
not hold still gets confident-looking answers. A calibrated model's directory holds
``calibration.json`` (written by the script that trained it) with ``text_floor``: the
cosine under which an image is no close match for a text query. Search leaves those out
by default and says how many it left out.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from msearch.config import EmbeddingSettings
from msearch.embedding.models import resolve_model

log = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"


def relevance_floor(settings: EmbeddingSettings) -> float | None:
    """The configured ``relevance_floor``, else the model's own calibration (a local
    model directory with ``calibration.json``), else None: every result is kept."""
    if settings.relevance_floor is not None:
        return settings.relevance_floor
    if settings.url is not None:  # the model lives on another machine
        return None
    path = Path(resolve_model(settings.model)) / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        floor = json.loads(path.read_text())["text_floor"]
        if isinstance(floor, (int, float)) and -1 <= floor <= 1:
            return float(floor)
        raise ValueError(f"text_floor {floor!r} is not a cosine")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring the model's calibration %s: %s", path, exc)
        return None
