"""Owner import throughput: 100,000 spreadsheet rows into a fresh SQLite database.

Prints one JSON line. Target (issue 2): under 30 s on SQLite.
Usage: python bench/import_owners.py [--rows 100000] [--db-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import resource
import tempfile
import time
from pathlib import Path

from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.directory.importer import import_file
from callcenter.directory.sample import HEADERS, sample_rows


def write_csv(path: Path, rows: int) -> None:
    # 25 buildings x 4 units x 34 floors x 4 rooms = 13,600 rooms per community; add communities.
    with open(path, "w", encoding="gbk", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADERS)
        written = 0
        community = 0
        while written < rows:
            community += 1
            for row in sample_rows(buildings=25, units=4, floors=34, per_floor=4, seed=community):
                row["小区"] = f"示例小区{community}"
                w.writerow([row[h] for h in HEADERS])
                written += 1
                if written >= rows:
                    break


async def run(rows: int, db_url: str | None) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "owners.csv"
        write_csv(src, rows)
        url = db_url or f"sqlite:///{tmp}/bench.sqlite3"
        engine = make_engine(url)
        await migrate(engine)
        sm = make_sessionmaker(engine)
        t0 = time.perf_counter()
        report = await import_file(sm, src)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = await import_file(sm, src)
        second = time.perf_counter() - t0
        await engine.dispose()
    return {
        "bench": "import_owners",
        "backend": url.split(":", 1)[0],
        "rows": rows,
        "imported": report.imported,
        "rejected": len(report.rejected),
        "people_created": report.people_created,
        "seconds": round(first, 2),
        "rows_per_s": round(rows / first),
        "reimport_seconds": round(second, 2),
        "reimport_people_created": again.people_created,
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "target_seconds": 30,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--db-url", default=None)
    args = ap.parse_args()
    print(json.dumps(asyncio.run(run(args.rows, args.db_url)), ensure_ascii=False))


if __name__ == "__main__":
    main()
