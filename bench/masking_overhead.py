"""Number masking on a response: CPU per body, against serialising the same body.

Every response a viewer without full numbers gets (an agent, an engineer) passes
through ``callcenter.web.masking.mask_body``. The bodies measured are the
biggest ones the console serves often:

- ``/api/tickets`` with 50 tickets (the default page), each with a summary, a
  description holding three numbers in different spellings, a caller number and
  four log events: JSON decoded, masked, encoded again;
- the same tickets as an HTML table (``/tickets``), masked as text;
- the same JSON with no number in it (the common case: only the scan).

The baseline, measured in the same run, is ``json.dumps`` of the same data, what
the handler already spends to write that body. Best of ``--rounds`` of
``--repeat`` bodies, ``process_time``. One JSON line.

    python bench/masking_overhead.py [--repeat 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import html
import json
import time
from collections.abc import Callable
from typing import Any

from callcenter.web.masking import mask_body

KEEP = frozenset({"+8675588886666"})


def tickets(n: int = 50, *, numbers: bool = True) -> dict[str, Any]:
    items = []
    for i in range(n):
        mobile = f"138{i:04d}{i:04d}"
        text = (f"业主 {mobile[:3]} {mobile[3:7]} {mobile[7:]} 来电，家属 +86-137-{i:04d}-2222，"
                f"座机 (0755)2654{i:04d}；厨房水管漏水，已通知工程部，欠费 1200.50 元")
        if not numbers:
            text = "业主来电，厨房水管漏水，已通知工程部，欠费 1200.50 元"
        items.append({
            "id": i + 1, "number": f"BX20261203-{i + 1:04d}", "community": "lakeside",
            "source": "phone", "category": "plumbing", "priority": "normal", "state": "new",
            "summary": "厨房水管漏水", "description": text,
            "caller_number": f"+86{mobile}" if numbers else "", "caller_name": "张伟",
            "person_id": 1000 + i, "room_id": 2000 + i, "location": "3栋1单元1201室",
            "created_at": "2026-12-03T08:30:00+00:00", "updated_at": "2026-12-03T08:31:00+00:00",
            "events": [{"at": "2026-12-03T08:30:00+00:00", "from": None, "to": "new",
                        "actor": "agent1", "note": "来源：电话"} for _ in range(4)],
        })
    return {"items": items, "total": n, "limit": 50, "offset": 0}


def page(data: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td><a href=\"/tickets/{t['id']}\">{t['number']}</a></td><td>{t['created_at']}</td>"
        f"<td>{html.escape(t['caller_name'])} {t['caller_number']}</td>"
        f"<td>{html.escape(t['description'])}</td></tr>" for t in data["items"])
    return f"<!doctype html><html><body><table>{rows}</table></body></html>"


def best(fn: Callable[[], object], repeat: int, rounds: int) -> float:
    """Best per-call CPU time in microseconds."""
    times = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(repeat):
            fn()
        times.append((time.process_time() - start) / repeat)
    return round(min(times) * 1e6, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    data = tickets()
    body = json.dumps(data, ensure_ascii=False).encode()
    clean = json.dumps(tickets(numbers=False), ensure_ascii=False).encode()
    html_body = page(data).encode()
    masked = mask_body(body, "application/json", "utf-8", KEEP)
    assert masked is not None and b"13800000000" not in masked  # it did mask
    assert mask_body(clean, "application/json", "utf-8", KEEP) is None
    result = {
        "bench": "masking_overhead",
        "json_bytes": len(body), "html_bytes": len(html_body),
        "baseline_dumps_us": best(lambda: json.dumps(data, ensure_ascii=False).encode(),
                                  args.repeat, args.rounds),
        "mask_json_us": best(lambda: mask_body(body, "application/json", "utf-8", KEEP),
                             args.repeat, args.rounds),
        "mask_json_no_numbers_us": best(
            lambda: mask_body(clean, "application/json", "utf-8", KEEP), args.repeat, args.rounds),
        "mask_html_us": best(lambda: mask_body(html_body, "text/html", "utf-8", KEEP),
                             args.repeat, args.rounds),
    }
    result["mask_json_vs_dumps"] = round(result["mask_json_us"] / result["baseline_dumps_us"], 1)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
