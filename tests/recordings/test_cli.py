"""``callcenter voicemail scan`` on a real spool copy and a real SQLite file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from callcenter.cli.main import main
from tests.conftest import FIXTURES


def test_voicemail_scan_makes_one_ticket_and_is_idempotent(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spool = tmp_path / "spool"
    shutil.copytree(FIXTURES / "asterisk" / "voicemail-spool", spool)
    config = tmp_path / "callcenter.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n\n[voicemail]\nspool_dir = "{spool}"\n',
        encoding="utf-8")
    assert main(["--config", str(config), "voicemail", "scan", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (report["found"], report["registered"]) == (1, 1)
    [job] = report["jobs"]
    assert job["ticket"].startswith("BX") and job["state"] in ("done", "failed")
    assert main(["--config", str(config), "voicemail", "scan"]) == 0
    out = capsys.readouterr().out
    assert "发现 1 条留言：新登记 0，已处理过 1" in out
    stored = list((tmp_path / "data" / "recordings").rglob("*.wav"))
    assert len(stored) == 1
    assert main(["--config", str(config), "voicemail", "purge"]) == 0
    assert "已删除 0 个" in capsys.readouterr().out
