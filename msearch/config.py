"""Typed settings: ``config/msearch.yaml`` overridden by ``MSEARCH_<SECTION>__<KEY>``.

One ``Settings`` object is created at the entry point (CLI or app factory) and handed down;
each component receives only its own section.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from msearch.errors import ConfigError

DEFAULT_MODEL = "openai/clip-vit-base-patch32"
DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config" / "msearch.yaml"


class EmbeddingSettings(BaseModel):
    # before ``model``, whose check depends on it
    url: str | None = None  # an Infinity server instead of the in-process engine
    api_key: str | None = None
    model: str = DEFAULT_MODEL
    batch_size: int = Field(default=32, ge=1, le=1024)
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    timeout_s: float = Field(default=120.0, gt=0)
    text_max_tokens: int | None = Field(default=None, ge=1)
    # The score under which a text query's match is no close match, left out unless a
    # search asks for a min_score; None: the model's own calibration, if it has one.
    relevance_floor: float | None = Field(default=None, ge=-1, le=1)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"embedding.url must be an http(s) URL, not {value!r}")
        return value

    @field_validator("model")
    @classmethod
    def _local_model_exists(cls, value: str, info: ValidationInfo) -> str:
        """A name written as a path must be a directory (with ``url`` set it is the
        Infinity server's); anything else is a hub id or an alias, resolved when the model
        loads."""
        if (
            info.data.get("url") is None
            and value.startswith(("/", "./", "../", "~"))
            and not Path(value).expanduser().is_dir()
        ):
            raise ValueError(f"there is no model directory at {value}")
        return value


class QdrantSettings(BaseModel):
    url: str | None = None
    api_key: str | None = None
    hnsw_m: int = Field(default=16, ge=4)
    hnsw_ef_construct: int = Field(default=100, ge=8)
    search_ef: int = Field(default=128, ge=8)


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    api_key: str | None = None
    allowed_roots: list[Path] = Field(default_factory=list)
    max_upload_mb: float = Field(default=25.0, gt=0)
    allowed_hosts: list[str] = Field(default_factory=list)
    access_log: bool = False
    failed_key_backoff: bool = True
    session_idle_s: float = Field(default=43200.0, gt=0)


class FileMonitoringSettings(BaseModel):
    folders: list[Path] = Field(default_factory=list)
    file_extensions: list[str] = Field(
        default_factory=lambda: [
            ".jpg",
            ".jpeg",
            ".png",
            ".webp",
            ".gif",
            ".bmp",
            ".tif",
            ".tiff",
            ".heic",
            ".heif",
            ".avif",
            ".mp4",
            ".mov",
            ".mkv",
            ".webm",
            ".avi",
            ".m4v",
            ".wav",
            ".flac",
            ".mp3",
            ".ogg",
            ".oga",
            ".opus",
            ".m4a",
            ".m4b",
            ".aac",
            ".mka",
            ".pdf",
        ]
    )
    debounce_ms: int = Field(default=1000, ge=0)
    ignore: list[str] = Field(
        default_factory=lambda: [".*", "*.part", "*.crdownload", "~$*", "*.tmp", "*.swp"]
    )
    observer: Literal["auto", "inotify", "polling"] = "auto"
    poll_interval_s: float = Field(default=5.0, gt=0)
    rescan_interval_s: float = Field(default=3600.0, ge=0)

    @field_validator("file_extensions")
    @classmethod
    def _normalise_extensions(cls, value: list[str]) -> list[str]:
        return [e.lower() if e.startswith(".") else f".{e.lower()}" for e in value]


class PerformanceSettings(BaseModel):
    max_concurrent_files: int = Field(default=64, ge=1)
    decode_workers: int = Field(default=2, ge=1)
    max_image_pixels: int = Field(default=100_000_000, ge=1)
    max_query_pixels: int = Field(default=25_000_000, ge=1)
    query_workers: int = Field(default=2, ge=1)
    thumbnail_size: int = Field(default=320, ge=32)
    min_free_disk_mb: int = Field(default=512, ge=0)
    retry_attempts: int = Field(default=3, ge=1)
    retry_backoff_s: float = Field(default=2.0, ge=0)


class VideoSettings(BaseModel):
    scene_threshold: float = Field(default=0.3, gt=0, lt=1)
    min_scene_seconds: float = Field(default=1.0, ge=0)
    max_scene_seconds: float = Field(default=30.0, gt=0)


DEFAULT_AUDIO_MODEL = "laion/clap-htsat-unfused"


class AudioSettings(BaseModel):
    """Sound search: a CLAP model beside the visual one, on audio files and the soundtrack
    of videos. It runs on embedding's device, dtype and timeout."""

    enabled: bool = True
    model: str = DEFAULT_AUDIO_MODEL
    window_seconds: float = Field(default=10.0, gt=0, le=60)
    hop_seconds: float = Field(default=5.0, gt=0, le=60)
    batch_size: int = Field(default=8, ge=1, le=256)

    @field_validator("model")
    @classmethod
    def _local_model_exists(cls, value: str) -> str:
        if value.startswith(("/", "./", "../", "~")) and not Path(value).expanduser().is_dir():
            raise ValueError(f"there is no model directory at {value}")
        return value

    @model_validator(mode="after")
    def _hop_within_window(self) -> AudioSettings:
        if self.hop_seconds > self.window_seconds:
            raise ValueError("audio.hop_seconds must not exceed audio.window_seconds")
        return self

    def engine_settings(
        self, embedding: EmbeddingSettings, aliases: dict[str, Path] | None = None
    ) -> EmbeddingSettings:
        """The in-process engine's settings for the sound model (``aliases``: built-in
        names, ``demo``, and the directory each stands for)."""
        model = str((aliases or {}).get(self.model, self.model))
        return embedding.model_copy(
            update={"model": model, "url": None, "batch_size": self.batch_size}
        )


class SpeechSettings(BaseModel):
    """What is said in audio files and videos, transcribed and searchable by its words.

    faster-whisper (Whisper through CTranslate2: int8 on a CPU, fp16 on CUDA) hears many
    languages; its models are downloaded once, so where there is no network and no model
    in the Hugging Face cache speech is off and /health says why. pocketsphinx's English
    model ships inside its package: it works offline (``msearch demo`` uses it)."""

    enabled: bool = True
    engine: Literal["faster-whisper", "pocketsphinx"] = "faster-whisper"
    # faster-whisper: a size (tiny, base, small, medium, large-v3, turbo, ...), a hub id of a
    # CTranslate2 conversion or a local directory holding one
    model: str = "base"
    device: str = "auto"
    # CTranslate2's compute type; default: int8 on a CPU, float16 on CUDA
    compute_type: str = "default"
    beam_size: int = Field(default=1, ge=1, le=10)
    # "auto" (detected per stretch of recording), or the language spoken ("en", "zh", ...)
    language: str = "auto"
    # a file's transcription may take 60 s plus this many times its length
    timeout_factor: float = Field(default=3.0, gt=0)

    @property
    def key(self) -> str:
        """What made a transcript: a file transcribed by another is transcribed again."""
        return "pocketsphinx" if self.engine == "pocketsphinx" else f"{self.engine}:{self.model}"


class DocumentSettings(BaseModel):
    """PDFs: each page found by its words (its text layer) and its looks (the visual model
    sees the page); with ``model`` (a ColQwen2 or ColPali checkpoint, e.g.
    ``vidore/colqwen2-v1.0-merged``, or its local directory) also by a vector per token of
    the page, matched against a vector per token of the query (MaxSim). That model reads
    tables and dense text the visual one cannot, at about a minute a page on a CPU: off
    unless set."""

    enabled: bool = True
    # pages beyond these are left out (the document is indexed, and says so): a PDF of
    # thousands of pages costs no more than this many
    max_pages: int = Field(default=500, ge=1)
    model: str | None = None
    batch_size: int = Field(default=4, ge=1, le=64)
    # pages whose pooled vectors are nearest the query's, ranked by MaxSim
    candidates: int = Field(default=200, ge=1, le=10_000)

    @field_validator("model")
    @classmethod
    def _local_model_exists(cls, value: str | None) -> str | None:
        local = ("/", "./", "../", "~")
        if value and value.startswith(local) and not Path(value).expanduser().is_dir():
            raise ValueError(f"there is no model directory at {value}")
        return value or None

    def engine_settings(self, embedding: EmbeddingSettings) -> EmbeddingSettings:
        """The in-process engine's settings for the page model (embedding's device, dtype
        and timeout)."""
        assert self.model is not None
        return embedding.model_copy(
            update={"model": self.model, "url": None, "batch_size": self.batch_size}
        )


class EnhancementSettings(BaseModel):
    enabled: bool = False
    min_side: int = Field(default=256, ge=1)
    weights_dir: Path | None = None
    face_restore: bool = False
    model: Literal["RealESRGAN_x4plus", "RealESRGAN_x2plus"] = "RealESRGAN_x4plus"
    tile: int = Field(default=256, ge=0)
    tile_pad: int = Field(default=10, ge=0)
    only_center_face: bool = False


class Settings(BaseSettings):
    """Everything msearch can be told. See config/msearch.yaml for the documented defaults."""

    model_config = SettingsConfigDict(
        env_prefix="MSEARCH_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Path("./data")
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    qdrant: QdrantSettings = Field(default_factory=QdrantSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    file_monitoring: FileMonitoringSettings = Field(default_factory=FileMonitoringSettings)
    performance: PerformanceSettings = Field(default_factory=PerformanceSettings)
    video: VideoSettings = Field(default_factory=VideoSettings)
    audio: AudioSettings = Field(default_factory=AudioSettings)
    speech: SpeechSettings = Field(default_factory=SpeechSettings)
    documents: DocumentSettings = Field(default_factory=DocumentSettings)
    enhancement: EnhancementSettings = Field(default_factory=EnhancementSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats explicit values from the YAML file (passed as init kwargs).
        return (env_settings, init_settings)

    def allowed_roots(self) -> list[Path]:
        """Where clients may point msearch: api.allowed_roots and the configured folders.
        With no allowed root configured, a single-user server (loopback, no API key) may
        use its user's home, so that a plain 'make run' can add a folder from the page."""
        roots = [*self.api.allowed_roots, *self.file_monitoring.folders]
        if not self.api.allowed_roots and is_loopback(self.api.host) and not self.api.api_key:
            roots.append(Path.home())
        return [r.expanduser().resolve() for r in roots]

    def resolved(self) -> Settings:
        """Paths made absolute so every component agrees on them."""
        copy = self.model_copy(deep=True)
        copy.data_dir = copy.data_dir.expanduser().resolve()
        copy.api.allowed_roots = [p.expanduser().resolve() for p in copy.api.allowed_roots]
        copy.file_monitoring.folders = [
            p.expanduser().resolve() for p in copy.file_monitoring.folders
        ]
        return copy


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


ENV_PREFIX = "MSEARCH_"
# MSEARCH_* variables that are not settings.
_NOT_SETTINGS = {"MSEARCH_CONFIG"}


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read the YAML config (explicit file, ``MSEARCH_CONFIG``, or the repo default) and env.

    ``overrides`` (nested dicts by section) sit between the file and the environment; tests
    use them to point at temporary directories. Anything msearch cannot start with (a
    broken file, an unknown key or variable, a wrong type) is a ConfigError of one line.
    """
    path = config_file or (
        Path(os.environ["MSEARCH_CONFIG"])
        if "MSEARCH_CONFIG" in os.environ
        else DEFAULT_CONFIG_PATH
    )
    values: dict[str, Any] = {}
    if path.is_file():
        values = _read_yaml(path)
    elif config_file is not None or "MSEARCH_CONFIG" in os.environ:
        raise ConfigError(f"config file not found: {path}")
    _check_keys(values, Settings, (), f"{path}: ")
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    _check_environment()
    try:
        return Settings(**values).resolved()
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the config file must be a mapping of sections")
    return loaded


def setting_paths(
    model: type[BaseModel] = Settings, prefix: tuple[str, ...] = ()
) -> dict[str, type[BaseModel] | None]:
    """Every dotted setting name: sections map to their model, leaves to None."""
    paths: dict[str, type[BaseModel] | None] = {}
    for name, field in model.model_fields.items():
        dotted = ".".join((*prefix, name))
        annotation: Any = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths[dotted] = annotation
            paths.update(setting_paths(annotation, (*prefix, name)))
        else:
            paths[dotted] = None
    return paths


def _suggest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f" — did you mean {close[0]}?" if close else ""


def _check_keys(
    values: dict[str, Any], model: type[BaseModel], prefix: tuple[str, ...], where: str
) -> None:
    for key, value in values.items():
        dotted = ".".join((*prefix, str(key)))
        field = model.model_fields.get(str(key))
        if field is None:
            raise ConfigError(
                f"{where}unknown setting {dotted}" + _suggest(dotted, list(setting_paths()))
            )
        annotation: Any = field.annotation
        if (
            isinstance(annotation, type)
            and issubclass(annotation, BaseModel)
            and isinstance(value, dict)
        ):
            _check_keys(value, annotation, (*prefix, str(key)), where)


def _env_name(dotted: str) -> str:
    return ENV_PREFIX + dotted.replace(".", "__").upper()


def _check_environment() -> None:
    known = {_env_name(dotted) for dotted in setting_paths()} | _NOT_SETTINGS
    for name in os.environ:
        if name.upper().startswith(ENV_PREFIX) and name.upper() not in known:
            raise ConfigError(
                f"unknown environment variable {name}" + _suggest(name.upper(), sorted(known))
            )


def _describe(exc: ValidationError, path: Path) -> str:
    error = exc.errors()[0]
    dotted = ".".join(str(part) for part in error["loc"])
    section = ".".join(str(part) for part in error["loc"] if not isinstance(part, int))
    source = _env_name(section) if _env_name(section) in os.environ else str(path)
    message = error["msg"].removeprefix("Value error, ")
    got = error.get("input")
    shown = (
        f" (got {got!r})"
        if got is not None and not isinstance(got, dict) and str(got) not in message
        else ""
    )
    more = exc.error_count() - 1
    return f"{source}: setting {dotted}: {message}{shown}" + (f" (and {more} more)" if more else "")
