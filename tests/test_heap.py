"""settle_heap: what exists at start-up is frozen out of later collections."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from callcenter.heap import settle_heap


@pytest.fixture
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_settle_heap_freezes_survivors_and_raises_the_young_threshold(restore_gc: None) -> None:
    survivor = [[i] for i in range(1000)]  # lives on, like the app's caches
    frozen = settle_heap(young_threshold=4321)
    assert frozen == gc.get_freeze_count() >= 1000
    assert gc.get_threshold()[0] == 4321
    # A later full collection walks only what was made after start-up.
    assert not any(obj is survivor for obj in gc.get_objects())
    assert survivor[999] == [999]
