"""Keep the garbage collector's pauses out of the calls (a server process habit).

CPython's full collection walks every tracked object: with SQLAlchemy, alembic,
aiohttp and the app loaded that is 130,000+ objects and a 60-120 ms pause, at
random moments, measured in bench/screenpop_latency.py as the whole of the
screen-pop's p99. Once the server has started, what is on the heap (modules,
compiled statements, caches) lives as long as the process, so:

* ``gc.freeze()`` moves it to the permanent generation: later collections walk
  only what was made since (each call's objects);
* a larger first-generation threshold makes young collections rarer, each still
  a fraction of a millisecond.

Only reference cycles are affected; everything else is freed as usual. Called
by ``serve`` (the process), not by ``create_app`` (tests build many apps).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 5000  # CPython's default is 700


def settle_heap(young_threshold: int = YOUNG_THRESHOLD) -> int:
    """Collect once, freeze what survives, raise the young threshold. Returns the
    number of objects frozen."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young_threshold, older, oldest)
    return gc.get_freeze_count()
