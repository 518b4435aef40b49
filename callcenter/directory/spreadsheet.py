"""Reading the 业主基本情况汇总表: .xlsx, and .csv in UTF-8 (with or without BOM) or GBK.

Sheets come as offices write them: a title row or two above the header
("XX小区业主信息表 2026年"), a two-level header (a merged group cell such as
"联系方式" above 手机/备用电话, or 姓名 merged down over both header rows),
several sheets (one per building, an instructions sheet), trailing empty or
formatted-only rows, full-width characters. The header is the first row, among
the first ``HEADER_SCAN`` rows, that names the required columns.

A workbook imports every visible sheet with a recognisable header, or only the
one named; sheets without one (说明, 汇总 of other columns, empty sheets) and
hidden sheets are skipped and reported with the reason.

Rows come out as ``(line_number, {canonical column: text})`` where the line
number is the row the office sees in Excel (or the line of the CSV file).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from callcenter.errors import InvalidInput

# canonical column → accepted header spellings
COLUMNS: dict[str, tuple[str, ...]] = {
    "community": ("小区", "小区名称", "项目", "项目名称"),
    "building": ("楼栋", "楼号", "栋", "楼栋号", "幢"),
    "unit": ("单元", "单元号"),
    "room": ("房号", "房间号", "室", "门牌号"),
    "name": ("姓名", "业主姓名", "住户姓名"),
    "role": ("身份", "住户身份", "关系"),
    "phone": ("手机", "手机号", "手机号码", "联系电话", "电话"),
    "phone2": ("备用电话", "其他电话", "备用手机", "固定电话"),
    "area": ("建筑面积", "面积", "建筑面积(㎡)", "建筑面积（㎡）"),
    "arrears": ("欠费金额", "欠费", "欠费金额(元)", "欠费金额（元）"),
    "tags": ("标签", "备注标签"),
}
REQUIRED = ("building", "room", "name")
HEADER_SCAN = 20
"""How many rows from the top may hold titles and the header."""


class FileUnusable(InvalidInput):
    """The file cannot be used at all (format, encoding, headers): nothing imported."""

    error_id = "import_file_unusable"


def _header_key(text: str) -> str:
    """A header cell as compared: NFKC (full-width → half-width), no spaces or
    line breaks, no required-field star or trailing colon."""
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"\s+", "", text).strip("*:").lower()


_LOOKUP = {_header_key(alias): key for key, aliases in COLUMNS.items() for alias in aliases}


def _column_of(header: str) -> str | None:
    text = _header_key(header)
    if not text:
        return None
    return _LOOKUP.get(text) or _LOOKUP.get(re.sub(r"\([^()]*\)$", "", text))


def cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        # Excel stores 1201 as 1201.0 and phone numbers as floats.
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    text = str(value)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)  # Ａ座, １３８…, full-width spaces and commas
    return text.strip()


def _letter(idx: int) -> str:
    letters = ""
    idx += 1
    while idx:
        idx, rem = divmod(idx - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return letters


@dataclass
class Header:
    line: int  # the last header line; data starts below it
    mapping: dict[int, str]  # column index → canonical column
    labels: dict[str, str] = field(default_factory=dict)  # canonical → 「G 列（手机）」


def find_header(rows: list[list[str]], *, letters: bool) -> Header | None:
    """The header among the first rows: the first row that, with the cells
    merged down into it from the row above, names every required column; a
    row of sub-headers right below it (手机/备用电话 under 联系方式) joins it."""

    def columns(row: list[str], above: list[str] | None) -> dict[int, tuple[str, str]]:
        found: dict[int, tuple[str, str]] = {}
        taken: set[str] = set()
        for idx in range(max(len(row), len(above or ()))):
            own = row[idx] if idx < len(row) else ""
            up = above[idx] if above and idx < len(above) else ""
            for text in (own, "" if own else up):
                key = _column_of(text)
                if key and key not in taken:
                    found[idx] = (key, text)
                    taken.add(key)
                    break
        return found

    for r, row in enumerate(rows):
        found = columns(row, rows[r - 1] if r else None)
        if not all(k in {key for key, _ in found.values()} for k in REQUIRED):
            continue
        line = r + 1
        if r + 1 < len(rows):
            below = rows[r + 1]
            extra = columns(below, None)
            mapped_idx = {i for i, (k, _) in found.items() if k in REQUIRED}
            new = {i: v for i, v in extra.items() if v[0] not in {k for k, _ in found.values()}}
            data_like = any(below[i] for i in mapped_idx if i < len(below) and i not in extra)
            if new and not data_like:
                for i, v in new.items():
                    found[i] = v
                line = r + 2
        header = Header(line, {i: k for i, (k, _) in found.items()})
        for i, (key, text) in found.items():
            where = f"{_letter(i)} 列" if letters else f"第 {i + 1} 列"
            header.labels[key] = f"{where}（{text.strip()}）"
        return header
    return None


def _missing(rows: list[list[str]]) -> list[str]:
    seen = {_column_of(c) for row in rows for c in row}
    return [COLUMNS[k][0] for k in REQUIRED if k not in seen]


@dataclass
class Sheet:
    """One sheet to import: its name ("" for a CSV file), header and rows."""

    name: str
    header: Header
    _rows: Callable[[], Iterator[tuple[int, list[str]]]]
    merged_down: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    """Cells merged down over data rows: first line → [(column index, last line)]."""

    def rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        mapping = self.header.mapping
        active: list[tuple[int, int, str]] = []  # (column, last line, value) of open merges
        for line, cells in self._rows():
            if line <= self.header.line:
                continue
            own = any(cells)
            if active:
                active = [m for m in active if m[1] >= line]
                if own:  # a merged 楼栋 cell names the building of every row it spans
                    for col, _, value in active:
                        cells += [""] * (col + 1 - len(cells))
                        cells[col] = cells[col] or value
            for col, last in self.merged_down.get(line, ()):
                active.append((col, last, cells[col] if col < len(cells) else ""))
            if not own:
                continue  # empty and formatting-only rows
            yield line, {key: (cells[i] if i < len(cells) else "") for i, key in mapping.items()}


@dataclass
class Workbook:
    """What a file offers: the sheets to import, and the ones skipped with why."""

    sheets: list[Sheet]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (sheet, Chinese reason)
    close: Callable[[], None] = lambda: None


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise FileUnusable("文件编码无法识别（应为 UTF-8 或 GBK）/ the file is neither UTF-8 nor GBK")


def open_workbook(path: Path, sheet: str | None = None) -> Workbook:
    """The sheets of ``path`` with a recognisable header (or the one named).
    Raises ``FileUnusable`` when there is none."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _open_xlsx(path, sheet)
    if suffix in (".csv", ".txt"):
        return _open_csv(path)
    raise FileUnusable(f"不支持的文件类型 / unsupported file type {suffix!r}: use .xlsx or .csv")


def read_rows(path: Path, sheet: str | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    book = open_workbook(path, sheet)
    try:
        for s in book.sheets:
            yield from s.rows()
    finally:
        book.close()


def count_rows(path: Path) -> int | None:
    """Data rows, for the progress bar (None when not cheap to know)."""
    if path.suffix.lower() in (".csv", ".txt"):
        with open(path, "rb") as fh:
            return max(0, sum(1 for _ in fh) - 1)
    return None


def _unusable_header(found: list[str], rows: list[list[str]]) -> FileUnusable:
    missing = _missing(rows)
    return FileUnusable(
        f"表头缺少必需的列 / missing required columns: {', '.join(missing)}",
        details={"missing": missing, "found": found},
    )


def _open_csv(path: Path) -> Workbook:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FileUnusable(f"无法读取文件 / cannot read {path}: {exc.strerror}") from None
    text = _decode(data)
    if not text.strip():
        raise FileUnusable("文件是空的 / the file is empty")
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:4096], delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel

    def rows() -> Iterator[tuple[int, list[str]]]:
        reader = csv.reader(io.StringIO(text, newline=""), dialect)
        for row in reader:
            yield reader.line_num, [cell_text(c) for c in row]

    top = _top(rows())
    header = find_header([r for _, r in top], letters=False)
    if header is None:
        raise _unusable_header(top[0][1] if top else [], [r for _, r in top])
    # a CSV line may hold a line break inside quotes: the header's line is the reader's
    header.line = top[header.line - 1][0]
    return Workbook([Sheet("", header, rows)])


def _top(rows: Iterator[tuple[int, list[str]]]) -> list[tuple[int, list[str]]]:
    out = []
    for item in rows:
        out.append(item)
        if len(out) >= HEADER_SCAN:
            break
    return out


def _open_xlsx(path: Path, wanted: str | None) -> Workbook:
    import zipfile

    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise FileUnusable(f"不是有效的 Excel 文件 / not a valid .xlsx file: {exc}") from None
    try:
        names = [ws.title for ws in wb.worksheets]
        if wanted is not None and wanted not in names:
            raise FileUnusable(
                f"没有名为「{wanted}」的工作表，现有：{'、'.join(names)} / no sheet named {wanted!r}",
                field="sheet", details={"sheets": names})
        sheets: list[Sheet] = []
        skipped: list[tuple[str, str]] = []
        first_unusable: FileUnusable | None = None
        for ws in wb.worksheets:
            if wanted is not None and ws.title != wanted:
                continue
            if wanted is None and getattr(ws, "sheet_state", "visible") != "visible":
                skipped.append((ws.title, "隐藏的工作表"))
                continue
            rows = _xlsx_rows(ws)
            top = _top(rows())
            if not any(any(r) for _, r in top):
                skipped.append((ws.title, "空白工作表"))
                continue
            header = find_header([r for _, r in top], letters=True)
            if header is None:
                missing = _missing([r for _, r in top])
                skipped.append((ws.title, f"没有可识别的表头（缺少{'、'.join(missing)}列）"))
                first_unusable = first_unusable or _unusable_header(top[0][1], [r for _, r in top])
                continue
            sheets.append(Sheet(ws.title, header, rows, _merged_down(wb, ws, header.line)))
        if not sheets:
            hidden = [name for name, why in skipped if why == "隐藏的工作表"]
            hint = (f"；隐藏的工作表（{'、'.join(hidden)}）未读取，可用 --sheet 指定 / "
                    f"hidden sheets were not read: name one with --sheet") if hidden else ""
            if first_unusable is not None:
                raise FileUnusable(str(first_unusable) + hint,
                                   details={**first_unusable.details, "hidden": hidden})
            if hidden:
                raise FileUnusable("只有隐藏的工作表" + hint, details={"hidden": hidden})
            raise FileUnusable("工作表是空的 / the sheet is empty")
    except BaseException:
        wb.close()
        raise
    return Workbook(sheets, skipped, wb.close)


def _xlsx_rows(ws: Any) -> Callable[[], Iterator[tuple[int, list[str]]]]:
    # The stored dimension may be wrong (some tools write A1:A1): read what is there.
    ws.reset_dimensions()

    def rows() -> Iterator[tuple[int, list[str]]]:
        for line, row in enumerate(ws.iter_rows(values_only=True), start=1):
            yield line, [cell_text(c) for c in row]

    return rows


def canonical_row(row: dict[str, str]) -> dict[str, str]:
    """A row keyed by Chinese headers (as in the sheet) → keyed by canonical column."""
    return {key: v for k, v in row.items() if (key := _column_of(k) or "")}


_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\b[^>]*?\bref="([A-Z]{1,3})(\d+):([A-Z]{1,3})(\d+)"')


def _col_index(letters: bytes) -> int:
    idx = 0
    for ch in letters:
        idx = idx * 26 + (ch - ord("A") + 1)
    return idx - 1


def _merged_down(wb: Any, ws: Any, header_line: int) -> dict[int, list[tuple[int, int]]]:
    """The sheet's cells merged over several data rows, from its XML (openpyxl's
    read-only mode does not read merges); streamed, so a big sheet is not held in
    memory. Without openpyxl's archive (another version) there are none."""
    archive, member = getattr(wb, "_archive", None), getattr(ws, "_worksheet_path", None)
    if archive is None or member is None:
        return {}
    found: set[tuple[int, int, int]] = set()
    tail = b""
    with archive.open(member) as fh:
        while chunk := fh.read(1 << 20):
            data = tail + chunk
            for m in _MERGE.finditer(data):
                first, last = int(m.group(2)), int(m.group(4))
                if last > first and first > header_line:
                    found.add((first, _col_index(m.group(1)), last))
            tail = data[-200:]
    out: dict[int, list[tuple[int, int]]] = {}
    for first, col, last in sorted(found):
        out.setdefault(first, []).append((col, last))
    return out
