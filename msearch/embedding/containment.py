"""A model call that raises inside Infinity's batch handler fails its batch, not the lane.

Infinity runs a loaded model's ``encode_pre`` (processor), ``encode_core`` (forward pass)
and ``encode_post`` in threads of its own, and an exception in any of them ends that thread:
the batch's callers, and every later one, waited out the whole timeout for the lane's
restart. Wrapped here, a failing step hands each item of its batch a ``BatchFailure``
instead; the thread lives on and ``raise_contained`` turns the failure into an error for
the callers of that batch alone, at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from msearch.errors import EmbeddingError

_STEPS = ("encode_pre", "encode_core", "encode_post")


@dataclass(frozen=True)
class BatchFailure:
    step: str
    message: str


@dataclass(frozen=True)
class _Carried:
    """A step's output with the batch's size, which a later step needs if it fails."""

    value: Any
    size: int


def contain_failures(replica: Any) -> None:
    """Wrap ``replica``'s three steps. They are bound from its class, so that a copy of
    the replica (the query twin, with processors of its own) can be wrapped anew."""
    pre, core, post = (getattr(type(replica), step).__get__(replica) for step in _STEPS)

    def encode_pre(items: list[Any]) -> _Carried:
        try:
            return _Carried(pre(items), len(items))
        except Exception as exc:
            return _Carried(BatchFailure("preprocessing", _describe(exc)), len(items))

    def encode_core(carried: _Carried) -> _Carried:
        if isinstance(carried.value, BatchFailure):
            return carried
        try:
            return _Carried(core(carried.value), carried.size)
        except Exception as exc:
            return _Carried(BatchFailure("the forward pass", _describe(exc)), carried.size)

    def encode_post(carried: _Carried) -> Any:
        if not isinstance(carried.value, BatchFailure):
            try:
                return post(carried.value)
            except Exception as exc:
                carried = _Carried(BatchFailure("postprocessing", _describe(exc)), carried.size)
        return [carried.value] * carried.size

    replica.encode_pre, replica.encode_core, replica.encode_post = (
        encode_pre,
        encode_core,
        encode_post,
    )


def raise_contained(embeddings: Any) -> None:
    """EmbeddingError when a batch's model call failed."""
    for embedding in embeddings:
        if isinstance(embedding, BatchFailure):
            raise EmbeddingError(f"the model failed in {embedding.step}: {embedding.message}")


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]
