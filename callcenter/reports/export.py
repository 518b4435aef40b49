"""The report's tables as CSV (UTF-8 with a BOM, so Excel reads the Chinese) and XLSX."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from openpyxl import Workbook
from openpyxl.styles import Font

from callcenter.reports.figures import Bucket, Granularity, Report, label, mm_ss, percent

HEADERS = ("时段", "来电", "进入队列", "接通", "放弃", "接通率", "放弃率", "服务水平",
           "平均等待", "平均通话", "语音留言", "自助结束", "紧急呼叫", "新建工单", "归档工单",
           "及时响应率", "紧急事件", "已接警", "平均接警", "最长接警")


def row(name: str, b: Bucket) -> list[str | int]:
    return [name, b.calls, b.offered, b.answered, b.abandoned, percent(b.answer_rate),
            percent(b.abandon_rate), percent(b.service_level), mm_ss(b.avg_wait_s),
            mm_ss(b.avg_talk_s), b.voicemail, b.ivr_only, b.emergency, b.tickets_opened,
            b.tickets_closed, percent(b.response_rate), b.incidents, b.incidents_acked,
            mm_ss(b.avg_ack_s), mm_ss(b.ack_max_s)]


def table(report: Report, community_names: dict[str, str]) -> list[Sequence[str | int]]:
    rows: list[Sequence[str | int]] = [HEADERS]
    g: Granularity = report.granularity
    rows += [row(label(b.start, g), b) for b in report.buckets]
    rows.append(row("合计", report.total))
    for code, b in report.by_community.items():
        rows.append(row(f"小区：{community_names.get(code, code or '未指定')}", b))
    return rows


def to_csv(rows: list[Sequence[str | int]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    for r in rows:
        # A cell a spreadsheet would run as a formula is written as text.
        writer.writerow([f"'{c}" if isinstance(c, str) and c and c[0] in "=+-@"
                         else c for c in r])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(rows: list[Sequence[str | int]], sheet: str = "话务报表") -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = sheet
    for r in rows:
        ws.append(list(r))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def encode(rows: list[Sequence[str | int]], kind: str, sheet: str = "话务报表"
           ) -> tuple[bytes, str]:
    """The table as a download of ``kind`` (``csv`` or ``xlsx``): its bytes and type."""
    if kind == "csv":
        return to_csv(rows), "text/csv"
    return to_xlsx(rows, sheet), XLSX_TYPE
