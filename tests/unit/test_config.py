from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from msearch.config import DEFAULT_CONFIG_PATH, Settings, load_settings
from msearch.errors import ConfigError


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
        index = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{path[-1]}:"))
        above = [line.strip() for line in lines[max(0, index - 6) : index]]
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
    with pytest.raises(ConfigError, match="port"):
        load_settings(bad)
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("api: {prot: 9000}\n", "unknown setting api.prot — did you mean api.port?"),
        ("embeding:\n  model: demo\n", "unknown setting embeding — did you mean embedding?"),
        (
            "performance:\n  decode_worker: 2\n",
            "unknown setting performance.decode_worker — did you mean performance.decode_workers?",
        ),
        ("api:\n  port: [9000\n", "not valid YAML (line 3, column 1)"),
        ("api:\n  port: abc\n", "setting api.port: Input should be a valid integer"),
        ("- a\n- b\n", "must be a mapping of sections"),
        (
            "embedding:\n  model: ./no-such-model\n",
            "setting embedding.model: there is no model directory at ./no-such-model",
        ),
        (
            "documents:\n  model: /no/such/colqwen2\n",
            "setting documents.model: there is no model directory at /no/such/colqwen2",
        ),
    ],
)
def test_config_mistakes_name_the_setting(tmp_path: Path, yaml_text: str, message: str) -> None:
    config = tmp_path / "msearch.yaml"
    config.write_text(yaml_text)
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    assert message in raised.value.message and "\n" not in raised.value.message
    assert raised.value.message.startswith(str(config))


def test_environment_mistakes_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSEARCH_API__PROT", "9000")
    with pytest.raises(
        ConfigError,
        match="unknown environment variable MSEARCH_API__PROT — did you mean MSEARCH_API__PORT",
    ):
        load_settings(DEFAULT_CONFIG_PATH)
    monkeypatch.delenv("MSEARCH_API__PROT")
    monkeypatch.setenv("MSEARCH_API__PORT", "ninety")
    with pytest.raises(ConfigError, match=r"^MSEARCH_API__PORT: setting api\.port"):
        load_settings(DEFAULT_CONFIG_PATH)


def test_every_setting_has_an_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSEARCH_VIDEO__MIN_SCENE_SECONDS", "2.5")
    monkeypatch.setenv("MSEARCH_FILE_MONITORING", '{"debounce_ms": 10}')  # a whole section
    settings = load_settings(DEFAULT_CONFIG_PATH)
    assert settings.video.min_scene_seconds == 2.5
    assert settings.file_monitoring.debounce_ms == 10
