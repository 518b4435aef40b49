"""Owner sheets as property offices really write them, built as real .xlsx and
.csv files: titles above a two-level merged header, several sheets, trailing
empty and formatted rows, numbers stored as floats, full-width characters and
phone cells with spaces."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import Workbook
from openpyxl.styles import Border, PatternFill, Side
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.directory.importer import import_file
from callcenter.directory.services import PersonView, lookup_by_number
from callcenter.directory.spreadsheet import FileUnusable

HEADER = ["小区", "楼栋", "单元", "房号", "姓名", "身份", "手机", "备用电话", "建筑面积", "欠费金额", "标签"]


async def _one(sm: async_sessionmaker[AsyncSession], number: str) -> PersonView:
    async with sm() as s:
        (person,) = await lookup_by_number(s, number)
        return person


async def _nobody(sm: async_sessionmaker[AsyncSession], number: str) -> bool:
    async with sm() as s:
        return await lookup_by_number(s, number) == []


def _titled_two_level_sheet(path: Path) -> None:
    """Two title rows, then a header over two rows: 房屋信息 and 联系方式 merged
    across their sub-headers, the other headers merged down over both rows;
    trailing empty rows, rows of formatting only and one of full-width spaces."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "业主信息"
    ws["A1"] = "湖畔花园业主信息表 2026年"
    ws.merge_cells("A1:K1")
    ws["A2"] = "制表：物业服务中心　　2026年11月30日"
    ws.merge_cells("A2:K2")
    for col, text in (("A", "小区"), ("E", "姓名"), ("F", "身份"), ("I", "建筑面积（㎡）"),
                      ("J", "欠费金额（元）"), ("K", "标签")):
        ws[f"{col}3"] = text
        ws.merge_cells(f"{col}3:{col}4")
    ws["B3"] = "房屋信息"
    ws.merge_cells("B3:D3")
    ws["G3"] = "联系方式"
    ws.merge_cells("G3:H3")
    for col, text in (("B", "楼栋"), ("C", "单元"), ("D", "房号"), ("G", "手机号码"), ("H", "备用电话")):
        ws[f"{col}4"] = text
    rows = [
        ["湖畔花园", 3, 2, 1201, "王建国", "业主", "138 1234 5678", "0755 8888 1234", 89.5, 1280, "VIP"],
        ["湖畔花园", 3, 2, 1202, "李秀英", "业主", "+86 137 0000 1111", None, 90, 0, None],
        ["湖畔花园", 3, 2, 1203, "张伟", "租户", "13812340000 13987654321", None, 90, 0, None],
        ["湖畔花园", 3, 2, None, "无房号", "业主", "13500001111", None, 80, 0, None],  # row 8
        ["湖畔花园", 3, 2, 1205, "赵敏", "业主", "13600001111 1234", None, 80, 0, None],  # row 9
    ]
    for r, values in enumerate(rows, start=5):
        for c, value in enumerate(values, start=1):
            ws.cell(r, c, value)
    yellow = PatternFill("solid", fgColor="FFFF00")
    thin = Side(style="thin")
    for r in range(10, 300):  # formatted, empty rows down the sheet
        for c in range(1, 12):
            ws.cell(r, c).fill = yellow
            ws.cell(r, c).border = Border(top=thin, bottom=thin)
    ws.cell(301, 5, "\u3000")  # a name cell of a full-width space
    ws.cell(302, 7, "  ")
    wb.save(path)


async def test_titles_above_a_merged_two_level_header(
        sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    path = tmp_path / "湖畔花园业主信息表.xlsx"
    _titled_two_level_sheet(path)
    report = await import_file(sessionmaker, path)
    # Five data rows; the formatted and blank rows below them are not rows.
    assert report.rows == 5 and report.imported == 4
    assert [(line, "no room" in why) for line, why in report.rejected] == [(8, True)]
    assert report.sheets_read == ["业主信息"] and report.sheets_skipped == []

    wang = await _one(sessionmaker, "13812345678")
    assert wang.name == "王建国" and wang.phones == ("+8613812345678", "+8675588881234")
    assert (wang.units[0].building, wang.units[0].unit, wang.units[0].room) == ("3", "2", "1201")
    assert str(wang.units[0].arrears) == "1280.00"  # the merged 欠费金额 header was found
    assert (await _one(sessionmaker, "13700001111")).name == "李秀英"
    zhang = await _one(sessionmaker, "13987654321")
    assert zhang.phones == ("+8613812340000", "+8613987654321")

    # The cell with digits that are no number: imported, and reported by row and column.
    assert (await _one(sessionmaker, "13600001111")).name == "赵敏"
    ((line, message),) = report.warnings
    assert line == 9
    assert message.startswith("第 9 行 G 列（手机号码）：") and "「1234」不是完整的号码" in message
    assert "invalid" not in message and "+86" not in message


def _building_sheet(wb: Workbook, title: str, building: str, rows: list[list[object]], *,
                    titled: bool = False) -> None:
    ws = wb.create_sheet(title)
    if titled:
        ws.append([f"湖畔花园{building}栋业主名单"])
    ws.append(HEADER)
    for row in rows:
        ws.append(["湖畔花园", building, 1, *row])


async def test_every_sheet_with_a_header_is_imported_and_the_others_named(
        sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    wb = Workbook()
    notes = wb.active
    assert notes is not None
    notes.title = "填表说明"
    notes.append(["请按栋填写，每栋一个工作表。手机号码请填写11位。"])
    _building_sheet(wb, "1栋", "1", [[101, "钱多多", "业主", 13900000101, None, 90, 0, None]])
    _building_sheet(wb, "2栋", "2", [[201, "孙丽", "业主", 13900000201, None, 90, 0, None],
                                    [202, "坏号码", "业主", 12345, None, 90, 0, None]], titled=True)
    summary = wb.create_sheet("汇总")
    summary.append(["楼栋", "户数", "欠费合计"])
    summary.append(["1", 1, 0])
    wb.create_sheet("Sheet3")
    _building_sheet(wb, "旧表", "9", [[901, "周旧", "业主", 13900000901, None, 90, 0, None]])
    wb["旧表"].sheet_state = "hidden"
    path = tmp_path / "owners.xlsx"
    wb.save(path)

    report = await import_file(sessionmaker, path)
    assert report.sheets_read == ["1栋", "2栋"]
    skipped = dict(report.sheets_skipped)
    assert set(skipped) == {"填表说明", "汇总", "Sheet3", "旧表"}
    assert "没有可识别的表头" in skipped["填表说明"] and "房号" in skipped["汇总"]
    assert skipped["Sheet3"] == "空白工作表" and skipped["旧表"] == "隐藏的工作表"
    assert report.imported == 2
    ((line, why),) = report.rejected
    assert line == 4 and why.startswith("工作表「2栋」") and "invalid phone number" in why
    assert (await _one(sessionmaker, "13900000101")).units[0].building == "1"
    assert (await _one(sessionmaker, "13900000201")).units[0].room == "201"
    assert await _nobody(sessionmaker, "13900000901")

    # Only the sheet named.
    only = await import_file(sessionmaker, path, sheet="旧表")
    assert only.sheets_read == ["旧表"] and only.imported == 1
    assert (await _one(sessionmaker, "13900000901")).name == "周旧"
    with pytest.raises(FileUnusable, match="没有名为「3栋」的工作表"):
        await import_file(sessionmaker, path, sheet="3栋")


async def test_a_workbook_without_any_header_is_unusable(
        sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["楼栋", "户数"])
    wb.create_sheet("说明").append(["见附件"])
    path = tmp_path / "summary.xlsx"
    wb.save(path)
    with pytest.raises(FileUnusable, match="missing required columns: 房号, 姓名"):
        await import_file(sessionmaker, path)

    # The data only in a hidden sheet: the message says how to read it.
    _building_sheet(wb, "旧表", "9", [[901, "周旧", "业主", 13900000901, None, 90, 0, None]])
    wb["旧表"].sheet_state = "hidden"
    wb.save(path)
    with pytest.raises(FileUnusable, match="隐藏的工作表（旧表）未读取，可用 --sheet 指定"):
        await import_file(sessionmaker, path)


async def test_floats_and_full_width_characters_in_xlsx(
        sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["小区", "楼栋", "单元", "房号", "姓名", "身份", "手机", "备用电话", "建筑面积", "欠费金额"])
    ws.append(["湖畔花园", "Ａ座", "１单元", 1201.0, "王　建国", "业主　", 13812345678.0,
               "0755－8888－1234", "８９．５", "１，２８０"])
    ws.append(["湖畔花园", 5.0, 1.0, "１２０２", "陈静", "业主", "1.3811112222E10",
               "13700001111，13700002222", 88.0, 0])
    ws.append(["湖畔花园", 5, 1, "1203.0", "周杰", "业主", "1.38123E+10", None, 88, 0])  # row 4
    ws.append(["湖畔花园", 5, 1, "1204", "吴宇", "业主", "１３９　１２３４　５６７８", None, 88, 0])
    path = tmp_path / "floats.xlsx"
    wb.save(path)
    report = await import_file(sessionmaker, path)
    assert report.imported == 3
    ((line, why),) = report.rejected
    assert line == 4 and "科学计数法" in why and "G 列（手机）" in why

    wang = await _one(sessionmaker, "13812345678")
    assert wang.name == "王建国" and wang.role == "owner"
    assert (wang.units[0].building, wang.units[0].unit, wang.units[0].room) == ("A", "1", "1201")
    assert str(wang.units[0].arrears) == "1280.00" and "+8675588881234" in wang.phones
    chen = await _one(sessionmaker, "13811112222")
    assert (chen.units[0].building, chen.units[0].unit, chen.units[0].room) == ("5", "1", "1202")
    assert chen.phones == ("+8613811112222", "+8613700001111", "+8613700002222")
    assert (await _one(sessionmaker, "13912345678")).name == "吴宇"
    assert await _nobody(sessionmaker, "13812300000")  # the rounded float is not a number


async def test_a_csv_exported_from_excel(
        sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    """Excel's CSV: the title row comes along, floats as text, full-width cells, GBK."""
    path = tmp_path / "export.csv"
    lines = [
        "湖畔花园业主信息表 2026年,,,,,,,,,,",
        ",,,,,,,,,,",
        "　小区,楼栋,单元,房号,姓名,身份,手机号码,备用电话,建筑面积（㎡）,欠费金额（元）,标签",
        "湖畔花园,3.0,2.0,1201.0,王建国,业主,1.3812345678E10,,89.5,1280.0,VIP，夜班族",
        "湖畔花园,Ｂ座,１,３０１,李秀英,家属,138 1234 0001 139 1234 0002,,,,",
        "湖畔花园,3,2,1203,坏号码,业主,1.38123E+10,,80,0,",
        ",,,,,,,,,,",
        ",,,,,,,,,,",
    ]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    report = await import_file(sessionmaker, path)
    assert report.imported == 2 and [line for line, _ in report.rejected] == [6]
    assert "第 7 列（手机号码）" in report.rejected[0][1]
    wang = await _one(sessionmaker, "13812345678")
    assert (wang.units[0].building, wang.units[0].unit, wang.units[0].room) == ("3", "2", "1201")
    assert wang.tags == ("VIP", "夜班族")
    li = await _one(sessionmaker, "13912340002")
    assert li.phones == ("+8613812340001", "+8613912340002")
    assert (li.units[0].building, li.units[0].room) == ("B", "301")


async def test_sub_headers_below_a_complete_header_row(
        sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    """楼栋/房号/姓名 merged down over two rows, only 联系方式 split into 手机 and
    备用电话 below: the second row is header, not data."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    for col, text in (("A", "小区"), ("B", "楼栋"), ("C", "房号"), ("D", "姓名")):
        ws[f"{col}1"] = text
        ws.merge_cells(f"{col}1:{col}2")
    ws["E1"] = "联系方式"
    ws.merge_cells("E1:F1")
    ws["E2"], ws["F2"] = "手机", "备用电话"
    ws.append(["湖畔花园", 7, 701, "郑爽", "13900000701", "0755 8888 0701"])
    ws.append(["湖畔花园", 7, None, "无房号", "13900000702", None])  # row 4
    path = tmp_path / "grouped.xlsx"
    wb.save(path)
    report = await import_file(sessionmaker, path)
    assert report.rows == 2 and [line for line, _ in report.rejected] == [4]
    zheng = await _one(sessionmaker, "13900000701")
    assert zheng.phones == ("+8613900000701", "+8675588880701")


def test_cli_lists_warnings_and_sheets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from callcenter.cli.main import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CALLCENTER_DATA_DIR", str(tmp_path / "data"))
    path = tmp_path / "titled.xlsx"
    _titled_two_level_sheet(path)
    assert main(["import-owners", str(path), "--no-progress"]) == 1  # row 8 is rejected
    out = capsys.readouterr()
    assert "line 8: " in out.err and "line 9: 警告 / warning: 第 9 行 G 列（手机号码）" in out.err
    assert "已读取工作表 / sheets read: 业主信息" in out.out
    assert main(["import-owners", str(path), "--no-progress", "--sheet", "其他"]) == 2
    assert "没有名为「其他」的工作表，现有：业主信息" in capsys.readouterr().err


async def test_a_building_cell_merged_down_names_every_row_it_spans(
        sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    """楼栋 and 单元 merged down over their rooms, as offices lay out a building;
    the formatted rows below the last room inside the merge are still no rows."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["湖畔花园 各栋业主"])
    ws.append(["楼栋", "单元", "房号", "姓名", "手机"])
    ws.append(["8栋", "1", 101, "甲一", "13900000801"])
    ws.append([None, None, 102, "甲二", "13900000802"])
    ws.append([None, "2", 201, "甲三", "13900000803"])
    ws.append(["9栋", "1", 101, "乙一", "13900000901"])
    ws.append([None, None, 102, "乙二", "13900000902"])
    ws.merge_cells("A3:A5")
    ws.merge_cells("B3:B4")
    ws.merge_cells("A6:A20")  # merged further down than the rooms go
    ws.merge_cells("B6:B20")
    ws.merge_cells("C9:E9")  # a note across columns is not copied into them
    ws["C9"] = "以下为空房"
    path = tmp_path / "merged.xlsx"
    wb.save(path)
    report = await import_file(sessionmaker, path, default_community="湖畔花园")
    assert report.imported == 5 and report.rows == 6
    assert [line for line, _ in report.rejected] == [9]
    places = {}
    for number in ("13900000801", "13900000802", "13900000803", "13900000901", "13900000902"):
        unit = (await _one(sessionmaker, number)).units[0]
        places[number[-3:]] = (unit.building, unit.unit, unit.room)
    assert places == {"801": ("8", "1", "101"), "802": ("8", "1", "102"), "803": ("8", "2", "201"),
                      "901": ("9", "1", "101"), "902": ("9", "1", "102")}
