"""The typed outcomes of msearch.

Each error has a stable machine-readable ``code`` (recorded in a failed file's status and
returned in the API's error envelope) and the HTTP status the API maps it to. Library code
raises these; only the API edge turns them into responses and only the CLI into exit codes.
"""

from __future__ import annotations

# Failures whose cause is not the file: the engine timed out or restarted, the store was
# briefly unavailable, or the file changed while it was read (still being written). Such
# files are tried again; the others stay failed until they change or a user retries them.
TRANSIENT_CODES = frozenset(
    {"embedding_timeout", "embedding_failed", "model_unavailable", "store_error", "file_changed"}
)


class MSearchError(Exception):
    """Base of every error msearch reports on purpose."""

    code = "internal_error"
    http_status = 500
    # A file that raises it ends ``skipped`` (not media msearch indexes), not ``failed``.
    skips_file = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class MediaError(MSearchError):
    """A file that cannot be turned into vectors; the file ends ``failed``."""

    code = "media_error"
    http_status = 422


class UnsupportedMedia(MediaError):
    code = "unsupported_media"
    skips_file = True


class UnsupportedType(UnsupportedMedia):
    """Its extension is not in file_monitoring.file_extensions: never opened."""

    code = "unsupported_type"


class CorruptMedia(MediaError):
    code = "corrupt_media"


class EncryptedDocument(MediaError):
    """A document locked by a password: msearch has none to open it with."""

    code = "encrypted_document"


class EmptyFile(MediaError):
    code = "empty_file"


class DecompressionBomb(MediaError):
    code = "too_many_pixels"


class FileVanished(MediaError):
    code = "file_not_found"
    http_status = 404


class FileUnreadable(MediaError):
    code = "file_unreadable"


class EmbeddingError(MSearchError):
    code = "embedding_failed"
    http_status = 503


class EmbeddingTimeout(EmbeddingError):
    code = "embedding_timeout"


class ModelUnavailable(EmbeddingError):
    code = "model_unavailable"


class ImageRejected(EmbeddingError):
    """The model's processor refuses this one image; the engine itself is fine."""

    code = "image_not_embeddable"
    http_status = 422


class AudioRejected(EmbeddingError):
    """The model's feature extractor refuses this sound; the engine itself is fine."""

    code = "audio_not_embeddable"
    http_status = 422


class StoreError(MSearchError):
    code = "store_error"
    http_status = 503


class DataDirLocked(StoreError):
    code = "data_dir_locked"
    http_status = 409


class ConfigError(MSearchError):
    """A setting msearch cannot start with; the message names it and, for a typo, the
    closest valid one."""

    code = "config_error"


class NotFound(MSearchError):
    code = "not_found"
    http_status = 404


class InvalidRequest(MSearchError):
    code = "invalid_request"
    http_status = 400


class PathNotAllowed(MSearchError):
    code = "path_not_allowed"
    http_status = 403


class Unauthorized(MSearchError):
    code = "unauthorized"
    http_status = 401


class TooManyAttempts(MSearchError):
    code = "too_many_attempts"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Forbidden(MSearchError):
    code = "forbidden"
    http_status = 403


class PayloadTooLarge(MSearchError):
    code = "payload_too_large"
    http_status = 413


class Conflict(MSearchError):
    code = "conflict"
    http_status = 409
