"""``callcenter oncall now`` against a real SQLite file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from callcenter.cli.main import main
from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from tests.oncall.test_who_is_on_call import seed


def _prepare(tmp_path: Path) -> Path:
    db = tmp_path / "cc.sqlite3"

    async def go() -> None:
        engine = make_engine(f"sqlite:///{db}")
        await migrate(engine)
        await seed(make_sessionmaker(engine))
        await engine.dispose()

    asyncio.run(go())
    cfg = tmp_path / "callcenter.toml"
    cfg.write_text(f'data_dir = "{tmp_path}"\n[database]\nurl = "sqlite:///{db}"\n',
                   encoding="utf-8")
    return cfg


def test_oncall_now_prints_the_chain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = str(_prepare(tmp_path))
    code = main(["--config", cfg, "oncall", "now", "--role", "night_duty",
                 "--at", "2026-11-24T02:00"])
    out = capsys.readouterr().out
    assert code == 0
    assert "夜班" in out and "至 2026-11-24 08:30" in out
    assert out.index("zhang") < out.index("li") < out.index("boss")

    code = main(["--config", cfg, "oncall", "now", "--role", "night_duty", "--community",
                 "lakeside", "--at", "2026-11-30T18:00+08:00", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and [p["name"] for p in data["people"]] == ["li", "wang", "boss"]

    assert main(["--config", cfg, "oncall", "now", "--role", "plumber"]) == 2
    assert "plumber" in capsys.readouterr().out
    assert main(["--config", cfg, "oncall", "now", "--role", "night_duty", "--at", "soon"]) == 2
