"""The orchestrator decides; media, embedding and store do the work."""

from msearch.orchestrator.orchestrator import ProcessingOrchestrator

__all__ = ["ProcessingOrchestrator"]
