"""Freezing the server's long-lived objects, and still collecting what it lets go."""

from __future__ import annotations

import gc
import weakref

from msearch.heap import collect_frozen, freeze_long_lived


class Model:
    """Stands for an outgoing model: held in a reference cycle, as engines are."""

    def __init__(self) -> None:
        self.itself = self


def test_a_frozen_object_let_go_later_is_collected() -> None:
    model = Model()
    alive = weakref.ref(model)
    freeze_long_lived()
    try:
        assert gc.get_freeze_count() > 0
        assert not any(tracked is model for tracked in gc.get_objects())
        del model
        gc.collect()
        assert alive() is not None  # frozen: a collection does not walk it
        collect_frozen()
        assert alive() is None
        assert gc.get_freeze_count() > 0  # what is still alive is frozen again
    finally:
        gc.unfreeze()


def test_collecting_without_a_frozen_heap_freezes_nothing() -> None:
    assert gc.get_freeze_count() == 0
    collect_frozen()  # a process that never froze (tests, the CLI) stays as it was
    assert gc.get_freeze_count() == 0
