"""Owner import: GBK/UTF-8 CSV and xlsx, bad rows rejected with their line, re-import idempotent."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.directory.importer import import_file
from callcenter.directory.models import FeeAccount, Person, PersonPhone, PersonRoom, Room
from callcenter.directory.services import lookup_by_number
from callcenter.directory.spreadsheet import FileUnusable

FIXTURE = Path(__file__).parent.parent / "fixtures" / "directory" / "owners_gbk.csv"
HEADER = ["小区", "楼栋", "单元", "房号", "姓名", "身份", "手机", "备用电话", "建筑面积", "欠费金额", "标签"]

EXPECTED_REJECTS = {
    6: "no room",
    7: "invalid phone number",
    8: "negative area",
    9: "not a number",
    10: "no name",
    11: "role must be",
}


async def _counts(sm: async_sessionmaker[AsyncSession]) -> tuple[int, ...]:
    async with sm() as s:
        return tuple(
            [await s.scalar(select(func.count()).select_from(t)) or 0
             for t in (Person, PersonPhone, PersonRoom, Room, FeeAccount)]
        )


async def test_gbk_csv_imports_good_rows_and_rejects_bad_ones_by_line(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    report = await import_file(sessionmaker, FIXTURE)
    assert report.imported == 5
    rejected = dict(report.rejected)
    assert set(rejected) == set(EXPECTED_REJECTS)
    for line, fragment in EXPECTED_REJECTS.items():
        assert fragment in rejected[line], (line, rejected[line])
    assert report.exit_code == 1

    async with sessionmaker() as s:
        (wang,) = await lookup_by_number(s, "13812345678")
        assert wang.tags == ("VIP", "夜班族")
        # one person who owns two rooms (same name, same phone on two rows)
        assert {(u.building, u.unit, u.room) for u in wang.units} == {("3", "2", "1201"), ("B", "1", "301")}
        assert next(u for u in wang.units if u.room == "1201").arrears == Decimal("1280.00")
        assert [p.name for p in await lookup_by_number(s, "075526543210")] == ["王建国"]
        (li,) = await lookup_by_number(s, "13912345678")  # full-width digits in the cell
        assert li.role == "family"
        (zhang,) = await lookup_by_number(s, "13700002222")  # second number in a "/" cell
        assert zhang.role == "tenant" and zhang.units[0].building == "3"
        (zhao,) = await lookup_by_number(s, "13600001111")
        assert zhao.units[0].unit is None and zhao.units[0].arrears == Decimal("2000.50")


async def test_reimport_changes_nothing_and_update_updates(
    sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
) -> None:
    await import_file(sessionmaker, FIXTURE)
    before = await _counts(sessionmaker)
    again = await import_file(sessionmaker, FIXTURE)
    assert again.people_created == 0 and again.rooms_created == 0
    assert await _counts(sessionmaker) == before

    updated = tmp_path / "updated.csv"
    text = FIXTURE.read_bytes().decode("gbk")
    text = text.replace("89.5,1280.00", "89.5,0").replace("赵敏,业主,+8613600001111", "赵敏,业主,13600009999")
    updated.write_bytes(text.encode("utf-8-sig"))  # the office re-saved it as UTF-8 with BOM
    report = await import_file(sessionmaker, updated)
    assert report.people_created == 0
    async with sessionmaker() as s:
        (wang,) = await lookup_by_number(s, "13812345678")
        assert next(u for u in wang.units if u.room == "1201").arrears == Decimal("0.00")
        (zhao,) = await lookup_by_number(s, "13600009999")
        assert zhao.name == "赵敏"
        assert await s.scalar(select(func.count()).select_from(Person).where(Person.name == "赵敏")) == 1


async def test_xlsx_with_numeric_cells(sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(HEADER)
    ws.append(["湖畔花园", 5, 1, 502, "陈静", "业主", 13811112222, None, 88.0, 300, None])
    ws.append(["湖畔花园", 5, 1, 503, "周杰", "业主", "abc", None, 88.0, 0, None])
    path = tmp_path / "owners.xlsx"
    wb.save(path)
    report = await import_file(sessionmaker, path)
    assert report.imported == 1
    assert [line for line, _ in report.rejected] == [3]
    async with sessionmaker() as s:
        (chen,) = await lookup_by_number(s, "+8613811112222")
        assert (chen.units[0].building, chen.units[0].room) == ("5", "502")


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        (b"", ".csv", "empty"),
        ("姓名,手机\n王,13812345678\n".encode(), ".csv", "missing required columns"),
        (b"\xff\xfe\x00garbage\x81", ".csv", "neither UTF-8 nor GBK"),
        (b"PK\x03\x04 not really a zip", ".xlsx", "not a valid .xlsx"),
        (b"whatever", ".pdf", "unsupported file type"),
    ],
)
async def test_unusable_files_import_nothing(
    sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, content: bytes, suffix: str, message: str,
) -> None:
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(content)
    with pytest.raises(FileUnusable, match=message):
        await import_file(sessionmaker, path)
    assert await _counts(sessionmaker) == (0, 0, 0, 0, 0)


def test_cli_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from callcenter.cli.main import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CALLCENTER_DATA_DIR", str(tmp_path / "data"))
    good = tmp_path / "good.csv"
    good.write_text(",".join(HEADER) + "\n湖畔花园,1,1,101,钱多多,业主,13899998888,,90,0,\n", encoding="utf-8")
    assert main(["import-owners", str(good), "--no-progress"]) == 0
    shutil.copy(FIXTURE, tmp_path / "mixed.csv")
    assert main(["import-owners", str(tmp_path / "mixed.csv"), "--no-progress"]) == 1
    assert "line 7: " in capsys.readouterr().err
    (tmp_path / "bad.csv").write_bytes(b"")
    assert main(["import-owners", str(tmp_path / "bad.csv"), "--no-progress"]) == 2
    assert main(["owners", "lookup", "0086 138 9999 8888", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"name": "钱多多"' in out and '"building": "1"' in out
    assert main(["owners", "lookup", "13000000000"]) == 1
