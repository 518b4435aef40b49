"""Schemathesis against the whole server on a real socket, on SQLite and PostgreSQL.

The server (``tests.api.serve``: ``create_app`` on the demo community, with the
Asterisk stand-in) runs in its own process, one on each backend; the document it serves at
``/api/openapi.json`` drives the generation: its examples, then generated cases,
positive and negative (an operation with no input has no negative case). Every generated request is sent with a
supervisor's token, an agent's (so the 403s must conform too) and a service
token bound to no person (a CRM's).
Checks: no 5xx, status codes, content types and bodies as documented. The
totals (requests, 5xx) per backend are asserted at the end; the figures are in
docs/BENCHMARKS.md.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig

from tests.api.conftest import make_tokens
from tests.conftest import _pg_admin, _pg_dsn
from tests.integration.demo_db import demo_db

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("CALLCENTER_FUZZ_EXAMPLES", "60"))
MIN_REQUESTS = int(os.environ.get("CALLCENTER_FUZZ_MIN_REQUESTS", "5000"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
STATS: dict[str, dict[str, Any]] = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, backend: str, url: str, tokens: tuple[str, str, str]) -> None:
        self.backend = backend
        self.base = url
        self.supervisor = {"Authorization": f"Bearer {tokens[0]}"}
        self.agent = {"Authorization": f"Bearer {tokens[1]}"}
        self.service = {"Authorization": f"Bearer {tokens[2]}"}  # a CRM's: no person
        self.session = requests.Session()
        self.stats = STATS.setdefault(backend, {"requests": 0, "5xx": 0, "violations": 0})


def _database(backend: str, request: pytest.FixtureRequest, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        path = tmp / "fuzz.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    name = f"cc_fuzz_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{request.getfixturevalue("pg_template")}"'))
    try:
        yield _pg_dsn(name)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _seed(db_url: str) -> tuple[str, str, str]:
    async with demo_db(db_url, datetime.now(UTC).date()) as sm:
        return await make_tokens(sm)


@contextmanager
def _serving(backend: str, request: pytest.FixtureRequest, tmp: Path) -> Iterator[Server]:
    tmp.mkdir(parents=True, exist_ok=True)
    databases = _database(backend, request, tmp)
    db_url = next(databases)
    tokens = asyncio.run(_seed(db_url))
    port = _free_port()
    log_path = tmp / f"server-{backend}.log"
    log = log_path.open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "tests.api.serve", db_url, str(tmp), str(port)],
                            stdout=log, stderr=subprocess.STDOUT,
                            cwd=Path(__file__).parents[2])
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if requests.get(f"{base}/api/openapi.json", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        else:
            raise RuntimeError("server did not start within 30 s")
        server = Server(backend, base, tokens)
        for _ in range(100):  # until the AMI link to the stand-in is up
            if server.session.post(f"{base}/api/console/status", json={"state": "ready"},
                                   headers=server.supervisor, timeout=10).status_code == 200:
                break
            time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
        errors = [line for line in log_path.read_text(errors="replace").splitlines()
                  if "Traceback" in line or "Error" in line]
        if errors:
            print(f"\n{backend} server log ({log_path}):", *errors[:20], sep="\n")
        for _ in databases:
            pass


@pytest.fixture(scope="module")
def fuzz_servers(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    """The same server on SQLite and on PostgreSQL: every case is sent to both."""
    tmp = tmp_path_factory.mktemp("fuzz")
    with _serving("sqlite", request, tmp / "sqlite") as lite, \
            _serving("postgresql", request, tmp / "pg") as pg:
        yield [lite, pg]


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_servers: list[Server]) -> Any:
    base = fuzz_servers[0].base
    documents = [requests.get(f"{s.base}/api/openapi.json", timeout=10).json()
                 for s in fuzz_servers]
    assert documents[0] == documents[1], "both backends serve the same document"
    config = SchemathesisConfig()
    project = config.projects.default
    project.update(base_url=base)
    project.generation.update(modes=list(GenerationMode), max_examples=EXAMPLES,
                              with_security_parameters=False, database="none")
    return schemathesis.openapi.from_url(f"{base}/api/openapi.json", config=config)


def _send(case: Any, fuzz_servers: list[Server]) -> None:
    for server in fuzz_servers:
        for headers in (server.supervisor, server.agent, server.service):
            response = case.call(base_url=server.base, session=server.session,
                                 headers=headers, timeout=30)
            server.stats["requests"] += 1
            if response.status_code >= 500:
                server.stats["5xx"] += 1
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except Exception:
                server.stats["violations"] += 1
                raise


def _operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


# Driven through schemathesis's public strategies (``APIOperation.as_strategy`` with
# hypothesis's ``@given``), not its pytest plugin: the plugin rewrites pytest's private
# node ids and broke with pytest 9.2, and the suite installs the newest of both.
@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
def test_every_generated_request_is_answered_as_documented(
        fuzz_schema: Any, fuzz_servers: list[Server], mode: GenerationMode) -> None:
    failures: list[str] = []
    operations = _operations(fuzz_schema)
    assert len(operations) >= 20, "the document declares the JSON API"
    for operation in operations:
        strategies = [operation.as_strategy(generation_mode=mode)]
        if mode is GenerationMode.POSITIVE:
            strategies += list(operation.get_strategies_from_examples())

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck),
                  phases=[Phase.explicit, Phase.generate, Phase.shrink])
        @given(case=st.one_of(strategies))
        def exchange(case: Any) -> None:
            _send(case, fuzz_servers)

        try:
            exchange()
        except Unsatisfiable:  # no input to break: nothing negative exists
            assert mode is GenerationMode.NEGATIVE, operation.label
        except Exception as exc:  # one line per broken operation, all of them reported
            failures.append(f"{operation.label}: {type(exc).__name__}: {exc}"[:2000])
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_fuzzing_sent_enough_requests_and_got_no_server_error(
        fuzz_servers: list[Server], backend: str) -> None:
    stats = STATS[backend]
    print(f"\nfuzz {backend}: {stats}")
    assert stats["5xx"] == 0, stats
    assert stats["violations"] == 0, stats
    assert stats["requests"] >= MIN_REQUESTS, stats
