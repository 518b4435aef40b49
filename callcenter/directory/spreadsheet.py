"""Reading the 业主基本情况汇总表: .xlsx, and .csv in UTF-8 (with or without BOM) or GBK.

Rows come out as ``(line_number, {canonical column: text})``; the header is
line 1, so a number points at the row the office sees in Excel.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

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


class FileUnusable(InvalidInput):
    """The file cannot be used at all (format, encoding, headers): nothing imported."""

    error_id = "import_file_unusable"


def _canonical_headers(raw: list[str]) -> dict[int, str]:
    lookup = {alias: key for key, aliases in COLUMNS.items() for alias in aliases}
    mapping: dict[int, str] = {}
    for idx, header in enumerate(raw):
        key = lookup.get(str(header or "").strip().replace(" ", ""))
        if key and key not in mapping.values():
            mapping[idx] = key
    missing = [COLUMNS[k][0] for k in REQUIRED if k not in mapping.values()]
    if missing:
        raise FileUnusable(
            f"表头缺少必需的列 / missing required columns: {', '.join(missing)}",
            details={"missing": missing, "found": [str(h) for h in raw]},
        )
    return mapping


def canonical_row(row: dict[str, str]) -> dict[str, str]:
    """A row keyed by Chinese headers (as in the sheet) → keyed by canonical column."""
    lookup = {alias: key for key, aliases in COLUMNS.items() for alias in aliases}
    return {lookup[k]: v for k, v in row.items() if k in lookup}


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        # Excel stores 1201 as 1201.0 and phone numbers as floats.
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value).strip()


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise FileUnusable("文件编码无法识别（应为 UTF-8 或 GBK）/ the file is neither UTF-8 nor GBK")


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        yield from _read_xlsx(path)
    elif suffix in (".csv", ".txt"):
        yield from _read_csv(path)
    else:
        raise FileUnusable(f"不支持的文件类型 / unsupported file type {suffix!r}: use .xlsx or .csv")


def count_rows(path: Path) -> int | None:
    """Data rows, for the progress bar (None when not cheap to know)."""
    if path.suffix.lower() in (".csv", ".txt"):
        with open(path, "rb") as fh:
            return max(0, sum(1 for _ in fh) - 1)
    return None


def _read_csv(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FileUnusable(f"无法读取文件 / cannot read {path}: {exc.strerror}") from None
    text = _decode(data)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:4096], delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        header = next(reader)
    except StopIteration:
        raise FileUnusable("文件是空的 / the file is empty") from None
    mapping = _canonical_headers(header)
    for row in reader:
        line = reader.line_num
        if not any(c.strip() for c in row):
            continue
        yield line, {key: (row[i].strip() if i < len(row) else "") for i, key in mapping.items()}


def _read_xlsx(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    import zipfile

    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise FileUnusable(f"不是有效的 Excel 文件 / not a valid .xlsx file: {exc}") from None
    try:
        ws = wb.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        try:
            header = [_cell_text(c) for c in next(rows)]
        except StopIteration:
            raise FileUnusable("工作表是空的 / the sheet is empty") from None
        mapping = _canonical_headers(header)
        for line, row in enumerate(rows, start=2):
            cells = [_cell_text(c) for c in row]
            if not any(cells):
                continue
            yield line, {key: (cells[i] if i < len(cells) else "") for i, key in mapping.items()}
    finally:
        wb.close()
