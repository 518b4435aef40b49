"""A synchronous, read-only engine on the SQLite file, for the hot read paths
(the screen-pop, the IVR's caller lookup) that run right on the event loop."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine


def sqlite_reader(url: str, *, pool_size: int = 1) -> Engine | None:
    """A synchronous, read-only engine on the SQLite file at ``url`` (None for other
    databases): short reads run with it on the event loop itself (a pop in about
    0.8 ms for 100,000 owners, a caller lookup in well under one). Measured (bench/screenpop_latency.py): aiosqlite hops to its
    thread and back for every cursor call (~20 per pop); a pop built in a worker
    thread takes 5-30 ms under load, the thread and the event loop trading the GIL;
    and the pop is usually built ahead, while the caller is still in the IVR.
    The IVR's caller lookup through aiosqlite took 130 ms at the median with 50
    calls arriving together (bench/ivr_standin.py), queued on the pool."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() != "sqlite" or u.database in (None, "", ":memory:"):
        return None
    engine = create_engine(u.set(drivername="sqlite"), pool_size=pool_size, max_overflow=0,
                           connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA query_only=ON")
        cur.close()

    return engine
