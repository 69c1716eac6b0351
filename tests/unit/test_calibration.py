"""Where a model's relevance floor comes from: the configuration, else the model's own
calibration.json, else none."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from msearch.config import EmbeddingSettings
from msearch.embedding.calibration import CALIBRATION_FILE, relevance_floor
from msearch.embedding.models import DEMO_MODEL_DIR


def test_the_demo_model_is_calibrated() -> None:
    recorded = json.loads((DEMO_MODEL_DIR / CALIBRATION_FILE).read_text())
    floor = relevance_floor(EmbeddingSettings(model="demo"))
    assert floor == recorded["text_floor"] and 0 < floor < 1
    # the floor sits above what other colours and shapes score, or at the matches' tail
    assert recorded["matching_p2"] >= floor


def test_the_configuration_overrides_the_model(tmp_path: Path) -> None:
    assert relevance_floor(EmbeddingSettings(model="demo", relevance_floor=-1)) == -1
    assert relevance_floor(EmbeddingSettings(model="demo", relevance_floor=0.3)) == 0.3


def test_models_without_a_calibration_keep_every_result(tmp_path: Path) -> None:
    assert relevance_floor(EmbeddingSettings(model=str(tmp_path))) is None
    assert relevance_floor(EmbeddingSettings(model="openai/clip-vit-base-patch32")) is None
    # a model on an Infinity server: its directory is not this machine's to read
    remote = EmbeddingSettings(url="http://127.0.0.1:7997", model=str(DEMO_MODEL_DIR))
    assert relevance_floor(remote) is None


@pytest.mark.parametrize("content", ["{not json", '{"text_floor": 7}', '{"floor": 0.2}', "[]"])
def test_a_broken_calibration_is_ignored_with_a_warning(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / CALIBRATION_FILE).write_text(content)
    with caplog.at_level(logging.WARNING):
        assert relevance_floor(EmbeddingSettings(model=str(tmp_path))) is None
    assert "ignoring the model's calibration" in caplog.text


def test_the_cli_says_what_the_floor_left_out() -> None:
    from msearch.cli.output import format_results

    hit = {"score": 0.91, "media_type": "image", "path": "/m/red-star.png"}
    assert format_results([], weaker=3) == (
        "no close matches: 3 weaker results left out (--min-score -1 shows them)"
    )
    assert format_results([]) == "no results"
    table = format_results([hit], weaker=1).splitlines()
    assert table[1].endswith("/m/red-star.png")
    assert table[-1] == "1 weaker result left out (--min-score -1 shows them)"
