"""import-owners."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from callcenter.cli.common import run_with_db, settings_from_args


def register(sub: Any) -> None:
    p = sub.add_parser(
        "import-owners",
        help="import the owner spreadsheet (业主基本情况汇总表, .xlsx or .csv)",
        description=(
            "Import owners, rooms, phones, arrears and tags from the spreadsheet property offices "
            "keep (.xlsx, or .csv in UTF-8 or GBK). Columns: 小区 楼栋 单元 房号 姓名 身份 手机 "
            "备用电话 建筑面积 欠费金额 标签, in a header row that may sit below title rows. A "
            "workbook imports every visible sheet with such a header (others are listed as "
            "skipped), or only --sheet. Re-importing is safe. Cells that cannot be read with "
            "certainty are listed as 'line N: 警告 ...' and the rest of the row is imported. "
            "Exit 0: all rows imported; 1: some rows rejected (listed as 'line N: reason'); "
            "2: the file could not be used."
        ),
    )
    p.add_argument("file", type=Path)
    p.add_argument("--community", help="community (code or name) for rows whose 小区 cell is empty; "
                                        "default: default_community")
    p.add_argument("--sheet", help="import only this sheet of the workbook (default: every sheet "
                                    "with a recognisable header)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from callcenter.directory.importer import import_file
    from callcenter.directory.spreadsheet import FileUnusable, count_rows

    settings = settings_from_args(args)
    path: Path = args.file
    if not path.is_file():
        print(f"文件不存在 / no such file: {path}", file=sys.stderr)
        return 2
    try:
        total = count_rows(path)
    except OSError as exc:
        print(f"无法读取 / cannot read {path}: {exc}", file=sys.stderr)
        return 2
    bar = tqdm(total=total, unit="行", disable=args.no_progress or not sys.stderr.isatty(),
               file=sys.stderr)

    def advance(rows: int) -> None:
        bar.update(rows)

    async def go(sm: Any) -> Any:
        from callcenter.directory.communities import spreadsheet_name

        async with sm() as session:  # a code (default_community) stands for its name
            default = await spreadsheet_name(session, args.community or settings.default_community)
        return await import_file(sm, path, default_community=default, progress=advance,
                                 sheet=args.sheet)

    try:
        report = run_with_db(settings, go)
    except FileUnusable as exc:
        bar.close()
        print(f"{path}: {exc}", file=sys.stderr)
        return 2
    bar.close()
    for line, reason in report.rejected:
        print(f"line {line}: {reason}", file=sys.stderr)
    for line, message in report.warnings:
        print(f"line {line}: 警告 / warning: {message}", file=sys.stderr)
    if report.sheets_read:
        print(f"已读取工作表 / sheets read: {'、'.join(report.sheets_read)}")
    for name, why in report.sheets_skipped:
        print(f"跳过工作表 / sheet skipped: 「{name}」{why}")
    print(
        f"导入 {report.imported} 行，拒绝 {len(report.rejected)} 行；新增 {report.people_created} 人，"
        f"更新 {report.people_updated} 人，新增 {report.rooms_created} 个房间 / "
        f"imported {report.imported}, rejected {len(report.rejected)}"
    )
    return report.exit_code
