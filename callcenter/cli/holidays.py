"""holidays import / status: the year's public holidays and 调休 days."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from callcenter.cli.common import settings_from_args

if TYPE_CHECKING:
    from ivr.holidays import HolidayCalendar


def register(sub: Any) -> None:
    p = sub.add_parser("holidays", help="load next year's public holidays and 调休 working days",
                       description="Manage the holiday data the hotline's time conditions use.")
    hsub = p.add_subparsers(dest="holidays_command", metavar="ACTION", required=True)
    imp = hsub.add_parser(
        "import", help="add holidays from a CSV file (date,kind,name)",
        description="Validate FILE (lines of date,kind,name with kind holiday or workday) and add "
                    "its days to the holiday data under the data directory. A running server "
                    "applies it on SIGHUP or the reload button of /admin/ivr (no restart). A year "
                    "counts as covered once it names 春节 and 国庆节 (or has a line YEAR,complete).")
    imp.add_argument("file", type=Path)
    imp.set_defaults(func=cmd_import)
    st = hsub.add_parser("status", help="how far the holiday data reaches",
                         description="Print the last date whose holidays are known, a warning "
                                     "when it is less than 30 days away, and, for this year and "
                                     "next, whether the days are official, imported or provisional "
                                     "(computed statutory holidays, 调休 unknown) with the "
                                     "provisional days.")
    st.set_defaults(func=cmd_status)


def _warn(cal: HolidayCalendar) -> None:
    for message in cal.data_warnings():
        print(f"警告 / warning: {message}", file=sys.stderr)


def cmd_import(args: argparse.Namespace) -> int:
    from ivr.admin.holiday_store import HolidayStore
    from ivr.holidays import HOLIDAY_FILE, HolidayFileError

    settings = settings_from_args(args)
    store = HolidayStore(settings.data_dir / HOLIDAY_FILE)
    try:
        text = args.file.read_text(encoding="utf-8-sig")
        count = store.import_text(text, name=str(args.file), suffix=args.file.suffix.lower())
    except OSError as exc:
        print(f"未导入 / not imported: {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    except UnicodeDecodeError:
        print(f"未导入 / not imported: {args.file}: not UTF-8 text", file=sys.stderr)
        return 2
    except HolidayFileError as exc:  # names the file and the line
        print(f"未导入 / not imported: {exc}", file=sys.stderr)
        return 2
    merged = store.current()
    print(f"已导入 {count} 天，节假日数据覆盖到 {merged.coverage_end()} / imported {count} days; "
          f"holidays known until {merged.coverage_end()}")
    _warn(merged)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from ivr.holidays import HOLIDAY_FILE, HolidayCalendar

    settings = settings_from_args(args)
    cal = HolidayCalendar()
    target = settings.data_dir / HOLIDAY_FILE
    if target.exists():
        cal.load_file(target)
    print(f"节假日数据覆盖到 {cal.coverage_end()} / holidays known until {cal.coverage_end()}")
    today = datetime.now(ZoneInfo(settings.timezone)).date()  # the site's today
    warning = cal.warning(today)
    if warning:
        print(warning)
    labels = {"official": "官方", "imported": "已导入", "provisional": "暂定"}
    # This year, next year, and the first year the package does not know.
    for year in sorted({today.year, today.year + 1, cal.package_end().year + 1}):
        source = cal.year_source(year)
        print(f"{year}: {labels[source]} / {source}")
        for day, name in cal.provisional_days(year).items():
            print(f"  {day.isoformat()} {name}（暂定 / provisional）")
    for note in cal.provisional_notes(today):
        print(note)
    _warn(cal)
    return 0
