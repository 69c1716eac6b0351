"""msearch: self-hosted multimodal media search."""

__version__ = "0.1.0"
