"""A flood of correct sign-ins against a real server process, while a monitor polls
``/healthz`` every 50 ms: does the rest of the server notice?

The server is ``create_app`` in its own process (SQLite, no Asterisk, no FastAGI,
argon2 at the production cost of ``make_hasher()``), started twice in the same
run: once as shipped (``PasswordWorkers``: argon2 on ``[http] password_workers``
threads, at most ``password_queue`` waiting, then 503 + Retry-After), once with
the checks on the event loop (``InlinePasswords``, the behaviour before: the
baseline). ``--clients`` browsers each sign in as fast as they can for
``--seconds`` (``GET /login`` for the form's CSRF token, then ``POST /login``,
cookies cleared between rounds; a 503 is retried at once, as a flood would).

Reported per mode: served sign-ins per second (302 to the home page), refused
ones (503 busy, 429 throttled), the ``POST /login`` latency p50/p99 of the
served ones, and ``/healthz`` p99 and max during the flood (with its non-200
answers and timeouts). Prints one JSON line.

Usage: python bench/login_flood.py [--clients 50] [--seconds 12]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from tempfile import TemporaryDirectory

import aiohttp

from callcenter.settings import DatabaseSettings, FastAgiSettings, HttpSettings, Settings

PASSWORD = "flood-pass-1234"
USERS = [f"agent{i:02d}" for i in range(20)]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
HEALTH_EVERY_S = 0.05


# ---------------------------------------------------------------- the server process


def _settings(data_dir: Path, port: int) -> Settings:
    return Settings(data_dir=data_dir, database=DatabaseSettings(url=""),
                    http=HttpSettings(host="127.0.0.1", port=port),
                    fastagi=FastAgiSettings(enabled=False))


async def _seed(data_dir: Path) -> None:
    from callcenter.auth.passwords import hash_password, make_hasher
    from callcenter.db.engine import make_engine, make_sessionmaker, migrate
    from callcenter.directory.models import StaffUser

    settings = _settings(data_dir, 0)
    engine = make_engine(settings.database_url)
    await migrate(engine)
    hasher = make_hasher()
    async with make_sessionmaker(engine)() as s:
        s.add_all(StaffUser(username=name, display_name=name, role="agent", all_communities=True,
                            password_hash=hash_password(hasher, PASSWORD)) for name in USERS)
        await s.commit()
    await engine.dispose()


async def _serve(data_dir: Path, mode: str) -> None:
    from aiohttp import web

    from callcenter.app import create_app
    from callcenter.auth.passwords import InlinePasswords, PasswordWorkers

    settings = _settings(data_dir, 0)
    app = create_app(settings, transcribe=False,
                     passwords=InlinePasswords if mode == "inline" else PasswordWorkers)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"PORT {port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()


@contextlib.contextmanager
def server(data_dir: Path, mode: str) -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(data_dir), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        if not line.startswith("PORT "):
            raise RuntimeError(f"server did not start: {line!r}")
        yield int(line.split()[1])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- the flood


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


async def _browser(base: str, user: str, until: float, served: list[float],
                   refused: dict[str, int]) -> None:
    jar = aiohttp.CookieJar(unsafe=True)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(cookie_jar=jar, timeout=timeout) as http:
        while time.monotonic() < until:
            jar.clear()
            try:
                async with http.get(f"{base}/login") as r:
                    m = CSRF.search(await r.text())
                if not m:
                    refused["no_form"] += 1
                    continue
                t0 = time.perf_counter()
                async with http.post(f"{base}/login", allow_redirects=False, data={
                        "username": user, "password": PASSWORD, "csrf_token": m.group(1)}) as r:
                    await r.read()
                    took = time.perf_counter() - t0
                    if r.status == 302:
                        served.append(took)
                    else:
                        refused[str(r.status)] = refused.get(str(r.status), 0) + 1
            except (aiohttp.ClientError, TimeoutError):
                refused["error"] += 1


async def _monitor(base: str, stop: asyncio.Event, latencies: list[float],
                   bad: dict[str, int]) -> None:
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                async with http.get(f"{base}/healthz") as r:
                    await r.read()
                    if r.status != 200:
                        bad[str(r.status)] = bad.get(str(r.status), 0) + 1
            except (aiohttp.ClientError, TimeoutError):
                bad["timeout"] = bad.get("timeout", 0) + 1
            latencies.append(time.perf_counter() - t0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), HEALTH_EVERY_S)


async def flood(port: int, clients: int, seconds: float) -> dict[str, object]:
    base = f"http://127.0.0.1:{port}"
    idle: list[float] = []
    quiet = asyncio.Event()
    probe = asyncio.ensure_future(_monitor(base, quiet, idle, {}))
    await asyncio.sleep(1.0)  # /healthz with nothing else going on
    quiet.set()
    await probe
    served: list[float] = []
    refused: dict[str, int] = {"no_form": 0, "error": 0}
    health: list[float] = []
    bad: dict[str, int] = {}
    stop = asyncio.Event()
    monitor = asyncio.ensure_future(_monitor(base, stop, health, bad))
    started = time.monotonic()
    until = started + seconds
    await asyncio.gather(*(_browser(base, USERS[i % len(USERS)], until, served, refused)
                           for i in range(clients)))
    elapsed = time.monotonic() - started  # the last sign-ins under way finish too
    stop.set()
    await monitor
    return {
        "served_logins": len(served),
        "served_per_s": round(len(served) / elapsed, 1),
        "refused": {k: v for k, v in refused.items() if v},
        "login_p50_ms": _pct(served, 0.5), "login_p99_ms": _pct(served, 0.99),
        "healthz_idle_p99_ms": _pct(idle, 0.99),
        "healthz_p50_ms": _pct(health, 0.5), "healthz_p99_ms": _pct(health, 0.99),
        "healthz_max_ms": round(max(health) * 1000, 1) if health else None,
        "healthz_polls": len(health), "healthz_not_200": bad,
        "elapsed_s": round(elapsed, 1),
    }


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        asyncio.run(_serve(Path(sys.argv[2]), sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--modes", default="pool,inline")
    args = ap.parse_args()
    http = HttpSettings()
    out: dict[str, object] = {
        "bench": "login_flood", "clients": args.clients, "seconds": args.seconds,
        "password_workers": http.password_workers, "password_queue": http.password_queue,
        "cpus": os.cpu_count(), "load_before": round(os.getloadavg()[0], 2),
    }
    with TemporaryDirectory(prefix="login-flood-") as tmp:
        data_dir = Path(tmp)
        asyncio.run(_seed(data_dir))
        out["argon2_check_ms"] = _one_check_ms()
        for mode in args.modes.split(","):
            with server(data_dir, mode) as port:
                out[mode] = asyncio.run(flood(port, args.clients, args.seconds))
                sys.stderr.write(f"{mode}: done\n")
    print(json.dumps(out, ensure_ascii=False))


def _one_check_ms() -> float:
    """One argon2 check at the production cost, on this machine, now."""
    from callcenter.auth.passwords import make_hasher, verify_password

    hasher = make_hasher()
    stored = hasher.hash(PASSWORD)
    t0 = time.perf_counter()
    for _ in range(5):
        verify_password(hasher, stored, PASSWORD)
    return round((time.perf_counter() - t0) / 5 * 1000, 1)


if __name__ == "__main__":
    main()
