"""The server's long-lived objects, kept out of the garbage collector's way.

A server that has loaded its models holds half a million Python objects (modules, models,
their tokenizers and processors) for the rest of its life. Each full collection walked
them all: ~200 ms with the event loop stopped, every few seconds under load, and every
request in flight waited for it. Frozen, they are never walked again; whatever is let go
later (an outgoing model after a switch) is collected by ``collect_frozen``, since frozen
objects in a reference cycle would otherwise stay in memory for good.
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> None:
    """Collect what start-up left behind, then freeze everything that is still alive."""
    gc.collect()
    gc.freeze()


def collect_frozen() -> None:
    """After letting go of something frozen with the rest (a model): collect it, then
    freeze what is left. One full collection, as start-up paid."""
    if gc.get_freeze_count():
        gc.unfreeze()
        freeze_long_lived()
