"""Opening original media files so that no link can lead msearch outside where it may read.

A path is only ever checked on the descriptor that is then read: the last component is
opened with ``O_NOFOLLOW`` and the kernel's own name for the opened file (``/proc/self/fd``)
must equal the path as recorded, so a symlink anywhere in the path, or one swapped in after
the file was indexed, is refused. Readers (decoders, hashing, FFmpeg) then reopen the very
same inode through ``/proc/self/fd/N``, never the name, so nothing can change under them.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

from msearch.errors import FileUnreadable, FileVanished, PathNotAllowed, UnsupportedMedia

_PROC_FD = Path("/proc/self/fd")
_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)

# The folders originals may be opened from now; None where no confinement applies (a
# local CLI run indexes what its user names).
RootsProvider = Callable[[], list[Path] | None]


def inside(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


class OriginalFile:
    """An original media file opened for reading (a context manager closing it).

    ``path`` is what was recorded; ``reopen_path`` names the opened inode itself (usable
    by this process and, with ``pass_fds=(fd,)``, by a child such as FFmpeg)."""

    def __init__(self, path: Path, fd: int, info: os.stat_result) -> None:
        self.path = path
        self.fd = fd
        self.size = info.st_size
        self.mtime = info.st_mtime

    @property
    def reopen_path(self) -> Path:
        return _PROC_FD / str(self.fd) if _PROC_FD.is_dir() else self.path

    def changed_since_opened(self) -> bool:
        """Written to, or replaced under its name, since it was opened: still being
        written (a copy, a download), so a failure now says nothing of the file."""
        seen = (self.size, self.mtime)
        try:
            if self.fd >= 0:
                opened = os.fstat(self.fd)
                if (opened.st_size, opened.st_mtime) != seen:
                    return True
            named = self.path.stat()
        except OSError:
            return False
        return (named.st_size, named.st_mtime) != seen

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> OriginalFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _real_name(fd: int, path: Path) -> Path:
    try:
        return (_PROC_FD / str(fd)).readlink()
    except OSError:  # no procfs: the name resolved now, checked against the same inode
        real = path.resolve()
        opened, named = os.fstat(fd), real.stat()
        if (opened.st_dev, opened.st_ino) != (named.st_dev, named.st_ino):
            raise PathNotAllowed(f"{path} changed while it was opened") from None
        return real


def open_original(path: Path, roots: Iterable[Path] | None = None) -> OriginalFile:
    """Open ``path`` (absolute, as recorded) for reading if it is a regular file reached
    through no symlink and, when ``roots`` is given, lies inside one of them.

    Raises FileVanished, FileUnreadable, UnsupportedMedia (not a regular file: FIFOs and
    devices are never read, so they cannot block) or PathNotAllowed (a link, or outside
    the roots)."""
    try:
        fd = os.open(path, _FLAGS)
    except FileNotFoundError as exc:
        raise FileVanished(f"file not found: {path}") from exc
    except PermissionError as exc:
        raise FileUnreadable(f"permission denied: {path}") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PathNotAllowed(
                f"{path} is a symbolic link; msearch does not follow links to media files"
            ) from exc
        raise FileUnreadable(f"cannot open {path}: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsupportedMedia("not a regular file")
        if _real_name(fd, path) != path:
            raise PathNotAllowed(
                f"{path} is reached through a symbolic link; msearch does "
                "not follow links to media files"
            )
        if roots is not None and not inside(path, roots):
            raise PathNotAllowed(f"{path} is outside the allowed and watched folders")
        return OriginalFile(path, fd, info)
    except BaseException:
        os.close(fd)
        raise


def canonical_path(raw: str | Path) -> Path:
    """An absolute path whose folders are resolved but whose last component is kept, so
    that a symlinked file is opened (and refused) as the link it is, not as its target."""
    path = Path(os.path.normpath(Path(raw).expanduser().absolute()))
    return path.parent.resolve() / path.name if path.name else path
