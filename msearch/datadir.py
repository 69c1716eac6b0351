"""One process owns a data directory at a time (Qdrant Edge and SQLite's writer need it)."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import IO, Any

from msearch.errors import DataDirLocked

LOCK_NAME = "msearch.lock"


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / LOCK_NAME
        self._fh: IO[str] | None = None

    def acquire(self, *, owner: dict[str, Any]) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fh = self._path.open("a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = _parse(fh.read())
            fh.close()
            url = holder.get("url")
            where = (
                f"a running msearch server at {url}"
                if url
                else (f"another msearch process (pid {holder.get('pid', '?')})")
            )
            hint = f"; use --server {url}" if url else ""
            raise DataDirLocked(
                f"the data directory {self._path.parent} is in use by {where}{hint}"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), **owner}))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()


def _parse(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
