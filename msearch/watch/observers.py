"""Starting a watchdog observer on a folder: inotify events where they work, polling where
they cannot (network and FUSE filesystems, inotify watches exhausted)."""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers.api import BaseObserver
from watchdog.observers.inotify import InotifyObserver
from watchdog.observers.polling import PollingObserver

log = logging.getLogger(__name__)

ObserverKind = Literal["inotify", "polling"]

# Filesystems whose changes made elsewhere (another machine, a FUSE daemon) raise no
# inotify events here.
EVENTLESS_FILESYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "9p",
        "afs",
        "ceph",
        "glusterfs",
        "lustre",
        "fuse",
        "fuseblk",
        "fuse.sshfs",
        "fuse.rclone",
        "fuse.s3fs",
        "fuse.gcsfuse",
        "davfs",
        "virtiofs",
    }
)

# Event types that say nothing changed.
_QUIET_EVENTS = frozenset({"opened", "closed_no_write"})


def mount_fstype(path: Path, mountinfo: str | None = None) -> str | None:
    """The filesystem type of the mount holding ``path`` (from /proc/self/mountinfo)."""
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            return None
    best, fstype = "", None
    target = str(path)
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        mount_point = fields[4].replace("\\040", " ")
        after = line.split(" - ", 1)[1].split()
        if not after:
            continue
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, fstype = mount_point, after[0]
    return fstype


class _Forwarder(FileSystemEventHandler):
    """Runs on the observer's thread: hands every changed path to ``notify``."""

    def __init__(self, notify: Callable[[str], None]) -> None:
        self._notify = notify

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _QUIET_EVENTS:
            return
        for raw in (event.src_path, event.dest_path):
            if raw:
                self._notify(raw.decode() if isinstance(raw, bytes) else raw)


def _inotify_observer() -> BaseObserver:
    return InotifyObserver()


def _polling_observer(interval_s: float) -> BaseObserver:
    return PollingObserver(timeout=interval_s)


def start_observer(
    folder: Path,
    recursive: bool,
    notify: Callable[[str], None],
    *,
    mode: Literal["auto", "inotify", "polling"],
    poll_interval_s: float,
) -> tuple[BaseObserver, ObserverKind]:
    """A running observer that calls ``notify(path)`` (from its own thread) for every
    path an event names. ``auto`` picks polling on eventless filesystems and falls back
    to it when inotify runs out of watches or instances; each fallback is logged."""
    handler = _Forwarder(notify)
    if mode == "auto":
        fstype = mount_fstype(folder)
        if fstype in EVENTLESS_FILESYSTEMS or (fstype or "").startswith("fuse."):
            log.warning(
                "%s is on a %s filesystem, which sends no change events: polling it every %gs",
                folder,
                fstype,
                poll_interval_s,
            )
            mode = "polling"
    if mode != "polling":
        observer = _inotify_observer()
        try:
            observer.schedule(handler, str(folder), recursive=recursive)
            observer.start()
            return observer, "inotify"
        except OSError as exc:
            stop_observer(observer)
            if mode == "inotify" or exc.errno not in (errno.ENOSPC, errno.EMFILE):
                raise
            log.warning(
                "cannot watch %s with inotify (%s): polling it every %gs instead. "
                "Raise fs.inotify.max_user_watches / max_user_instances to get "
                "events again",
                folder,
                exc.strerror or exc,
                poll_interval_s,
            )
    observer = _polling_observer(poll_interval_s)
    observer.schedule(handler, str(folder), recursive=recursive)
    observer.start()
    return observer, "polling"


def stop_observer(observer: BaseObserver) -> None:
    try:
        observer.stop()
        if observer.is_alive():
            observer.join(timeout=5)
    except (OSError, RuntimeError):
        log.debug("stopping an observer failed", exc_info=True)
