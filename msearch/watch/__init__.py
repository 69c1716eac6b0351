"""Watched folders: the index kept equal to the disk."""

from msearch.watch.monitor import FolderMonitor
from msearch.watch.sync import FolderSync, SyncReport

__all__ = ["FolderMonitor", "FolderSync", "SyncReport"]
