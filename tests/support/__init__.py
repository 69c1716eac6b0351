"""Helpers the test tiers share: paths, media and video makers, the CLI and the app."""
