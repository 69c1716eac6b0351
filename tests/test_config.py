from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from msearch.config import DEFAULT_CONFIG_PATH, Settings, load_settings


def _leaf_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for name, field in model.model_fields.items():
        annotation: Any = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths.extend(_leaf_paths(annotation, (*prefix, name)))
        else:
            paths.append((*prefix, name))
    return paths


def test_every_setting_is_in_the_default_yaml_with_a_comment() -> None:
    text = DEFAULT_CONFIG_PATH.read_text()
    document = yaml.safe_load(text)
    lines = text.splitlines()
    for path in _leaf_paths(Settings):
        node: Any = document
        for part in path:
            assert isinstance(node, dict) and part in node, f"{'.'.join(path)} missing"
            node = node[part]
        # documented: a comment sits directly above the key, or above its section's run
        index = next(i for i, line in enumerate(lines)
                     if line.strip().startswith(f"{path[-1]}:"))
        above = [line.strip() for line in lines[max(0, index - 6):index]]
        assert any(line.startswith("#") for line in above), f"{'.'.join(path)} undocumented"


def test_yaml_defaults_equal_code_defaults() -> None:
    from_yaml = load_settings(DEFAULT_CONFIG_PATH)
    from_code = Settings().resolved()
    assert from_yaml.model_dump() == from_code.model_dump()


def test_environment_overrides_yaml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MSEARCH_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("MSEARCH_API__PORT", "9123")
    monkeypatch.setenv("MSEARCH_API__ALLOWED_ROOTS", f'["{tmp_path}"]')
    monkeypatch.setenv("MSEARCH_EMBEDDING__BATCH_SIZE", "7")
    settings = load_settings(DEFAULT_CONFIG_PATH)
    assert settings.data_dir == (tmp_path / "d").resolve()
    assert settings.api.port == 9123
    assert settings.api.host == "127.0.0.1"  # the rest of the section is kept
    assert settings.api.allowed_roots == [tmp_path.resolve()]
    assert settings.embedding.batch_size == 7


def test_invalid_values_are_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("api:\n  port: 99999\n")
    with pytest.raises(ValueError, match="port"):
        load_settings(bad)
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "missing.yaml")
