"""The command line: help for every command, init, check-config, asterisk-config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from callcenter.cli.main import main

COMMANDS = ["init", "run", "demo", "migrate", "import-owners", "owners", "check-config", "user", "oncall",
            "asterisk-config", "token", "triage", "holidays", "prompts"]


def test_help_lists_every_command() -> None:
    out = subprocess.run([sys.executable, "-m", "callcenter", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for command in COMMANDS:
        assert command in out
    for command in COMMANDS:
        res = subprocess.run([sys.executable, "-m", "callcenter", command, "--help"],
                             capture_output=True, text=True)
        assert res.returncode == 0 and "usage:" in res.stdout, command


def test_init_writes_a_valid_example_and_refuses_to_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    text = (tmp_path / "callcenter.toml").read_text(encoding="utf-8")
    assert "[[asterisk]]" in text
    assert main(["init"]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["init", "--force"]) == 0
    assert main(["check-config"]) == 0
    out = capsys.readouterr().out
    assert '"secret": "***"' in out and "change-me" not in out


def test_check_config_names_the_bad_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "cc.toml"
    cfg.write_text('[fastagi]\nport = -1\n', encoding="utf-8")
    assert main(["--config", str(cfg), "check-config"]) == 2
    err = capsys.readouterr().err
    assert "fastagi.port" in err and str(cfg) in err
    assert main(["--config", str(tmp_path / "missing.toml"), "check-config"]) == 2


def test_asterisk_config_prints_manager_and_dialplan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "cc.toml"
    cfg.write_text('[[asterisk]]\nname = "pbx1"\nusername = "cc"\nsecret = "s3cret"\n'
                   '[fastagi]\nhost = "10.0.0.5"\nport = 4573\n', encoding="utf-8")
    assert main(["--config", str(cfg), "asterisk-config"]) == 0
    out = capsys.readouterr().out
    assert "[cc]" in out and "secret = s3cret" in out
    assert "AGI(agi:async)" in out
    assert "AGI(agi://10.0.0.5:4573/hotline)" in out
