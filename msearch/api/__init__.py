"""The HTTP edge (FastAPI). HTTP concerns live here and nowhere else."""

from msearch.api.app import create_app

__all__ = ["create_app"]
