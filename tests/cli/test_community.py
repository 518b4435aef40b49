"""`callcenter community list|add|set`: codes, names and hotline numbers from the
command line, and the warnings when the settings name a community that is not there."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from callcenter.cli.main import main
from callcenter.clock import ManualClock
from callcenter.directory.hotlines import CommunityResolver, HotlineDirectory


@pytest.fixture
def cli(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    """Run ``callcenter`` against the test database; returns (code, out, err)."""
    cfg = tmp_path / "cc.toml"
    cfg.write_text(f'data_dir = "{tmp_path}"\n[database]\nurl = "{db_url}"\n', encoding="utf-8")

    def run(*argv: str, settings: str = "", tables: str = "") -> tuple[int, str, str]:
        """``settings``: top-level keys to add; ``tables``: TOML tables to add."""
        if settings or tables:
            cfg.write_text(settings + cfg.read_text(encoding="utf-8") + tables, encoding="utf-8")
        code = main(["--config", str(cfg), *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def listed(cli: Any) -> dict[str, dict[str, Any]]:
    code, out, _ = cli("community", "list", "--json")
    assert code == 0
    return {row["code"]: row for row in json.loads(out)}


def test_add_then_list_shows_code_name_hotlines_and_owners(cli: Any, tmp_path: Path) -> None:
    assert cli("community", "list")[1].startswith("还没有小区")
    code, out, _ = cli("community", "add", "binjiang", "--name", "滨江花园",
                       "--hotline", "400-800-1234", "--hotline", "4008001234",
                       "--hotline", "0755-8888 6666")
    assert code == 0 and "binjiang" in out and "滨江花园" in out
    # The import finds the community by its name: the owners go under this code.
    sheet = tmp_path / "owners.csv"
    sheet.write_text("小区,楼栋,单元,房号,姓名,身份,手机\n"
                     "滨江花园,3,2,1201,王建国,业主,13812345678\n"
                     "滨江花园,3,2,1201,李梅,家属,13912345678\n"
                     "滨江花园,5,1,301,赵敏,业主,13712345678\n", encoding="utf-8")
    assert cli("import-owners", str(sheet), "--no-progress")[0] == 0
    rows = listed(cli)
    assert set(rows) == {"binjiang"}
    # One entry per number however it was typed, in the form calls are matched in.
    assert rows["binjiang"]["hotline_numbers"] == ["+864008001234", "+8675588886666"]
    assert rows["binjiang"]["owners"] == 2  # 李梅 is family, not an owner
    text = cli("community", "list")[1]
    assert "binjiang\t滨江花园\t热线 +864008001234, +8675588886666\t业主 2" in text


async def test_a_hotline_set_here_gives_the_call_its_community(cli: Any, sessionmaker: Any) -> None:
    # The command runs its own event loop, as it does from a shell.
    assert (await asyncio.to_thread(cli, "community", "add", "hupan", "--name", "湖畔花园"))[0] == 0
    assert (await asyncio.to_thread(cli, "community", "set", "hupan",
                                    "--add-hotline", "+86 400 800 5678"))[0] == 0
    resolver = CommunityResolver(HotlineDirectory(sessionmaker, ManualClock()), None)
    choice = await resolver.for_call({"agi_dnid": "4008005678"})  # as the trunk sends it
    assert (choice.code, choice.rule) == ("hupan", "dialled number")


def test_set_renames_recodes_and_edits_hotlines(cli: Any) -> None:
    assert cli("community", "add", "c-3f9a0b1c2d", "--name", "滨江",
               "--hotline", "4008001234", "--hotline", "8001")[0] == 0
    code, out, _ = cli("community", "set", "c-3f9a0b1c2d", "--code", "binjiang",
                       "--name", "滨江花园", "--remove-hotline", "400-800-1234",
                       "--add-hotline", "0755 6666 7777")
    assert code == 0 and "default_community" in out  # a reminder: settings name codes
    assert listed(cli) == {"binjiang": {"code": "binjiang", "name": "滨江花园", "owners": 0,
                                        "hotline_numbers": ["8001", "+8675566667777"]}}


def test_bad_input_is_a_clear_error_and_changes_nothing(cli: Any) -> None:
    assert cli("community", "add", "hupan", "--name", "湖畔花园", "--hotline", "4008001234")[0] == 0
    assert cli("community", "add", "binjiang", "--name", "滨江花园")[0] == 0
    before = listed(cli)

    code, _, err = cli("community", "set", "nosuch", "--name", "x")
    assert code == 1 and "nosuch" in err and "binjiang, hupan" in err  # names the known codes
    # The same hotline in another spelling, on another community.
    code, _, err = cli("community", "set", "binjiang", "--add-hotline", "+86 400-800-1234")
    assert code == 1 and "hupan" in err and "+864008001234" in err
    code, _, err = cli("community", "add", "lake", "--name", "湖", "--hotline", "4008001234")
    assert code == 1 and "hupan" in err
    code, _, err = cli("community", "add", "hupan", "--name", "另一个")
    assert code == 1 and "hupan" in err
    code, _, err = cli("community", "add", "lake2", "--name", "湖畔花园")  # the import matches names
    assert code == 1 and "湖畔花园" in err
    code, _, err = cli("community", "add", "Bad Code", "--name", "x")
    assert code == 1 and "Bad Code" in err
    code, _, err = cli("community", "set", "binjiang", "--add-hotline", "not-a-number")
    assert code == 1 and "not-a-number" in err
    code, _, err = cli("community", "set", "binjiang", "--remove-hotline", "4008001234")
    assert code == 1 and "+864008001234" in err
    code, _, err = cli("community", "set", "binjiang", "--code", "hupan")
    assert code == 1 and "hupan" in err
    assert listed(cli) == before


def test_check_config_warns_when_default_community_names_none(cli: Any) -> None:
    code, out, err = cli("check-config", settings='default_community = "binjiang"\n')
    assert code == 0 and json.loads(out)["default_community"] == "binjiang"
    assert "default_community" in err and "binjiang" in err and "community add" in err
    assert cli("community", "add", "binjiang", "--name", "滨江花园")[0] == 0
    assert cli("check-config")[2] == ""


def test_an_asterisk_link_naming_no_community_is_warned_too(cli: Any) -> None:
    code, _, err = cli("check-config", tables='[[asterisk]]\nname = "pbx1"\ncommunity = "north"\n')
    assert code == 0 and "asterisk[0].community" in err and "north" in err


def test_the_default_community_code_fills_empty_community_cells(cli: Any, tmp_path: Path) -> None:
    """default_community is a code; the import used to create a second community
    named after the code for rows without a 小区 cell."""
    assert cli("community", "add", "binjiang", "--name", "滨江花园",
               settings='default_community = "binjiang"\n')[0] == 0
    sheet = tmp_path / "owners.csv"
    sheet.write_text("楼栋,单元,房号,姓名,身份,手机\n3,2,1201,王建国,业主,13812345678\n",
                     encoding="utf-8")
    assert cli("import-owners", str(sheet), "--no-progress")[0] == 0
    rows = listed(cli)
    assert set(rows) == {"binjiang"} and rows["binjiang"]["owners"] == 1
