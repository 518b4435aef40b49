"""Owner import: spreadsheet rows into communities, rooms, people, phones, fees, tags.

Each row is validated on its own: a bad row is reported as ``line N: reason``
while the good rows go in; a cell the importer cannot read with certainty (a
phone cell whose spaces do not cut it into valid numbers) is a warning naming
the row and column, and the rest of the row goes in. A workbook's sheets are
imported one after the other (``spreadsheet.open_workbook`` decides which);
with several, each message names its sheet. Importing the same file again changes nothing; an
updated file updates people and rooms instead of duplicating them. A person is
the same person when the name matches and a phone number matches, or when the
name matches within the same room.

Rows are applied in batches with set-based statements, so 100,000 rows take
seconds, not minutes (bench/import_owners.py).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.directory.models import (
    Building,
    Community,
    FeeAccount,
    Person,
    PersonPhone,
    PersonRoom,
    Room,
    Tag,
    Unit,
    person_tags,
)
from callcenter.directory.phones import float_digits, phone_kind, read_phone_cell
from callcenter.directory.spreadsheet import COLUMNS, open_workbook

ROLE_NAMES = {"业主": "owner", "租户": "tenant", "家属": "family", "": "owner",
              "owner": "owner", "tenant": "tenant", "family": "family"}
_TAG_SPLIT = re.compile(r"[、,，;；/\s]+")
_MONEY_CLEAN = re.compile(r"[¥￥元,，\s]")
_FW = str.maketrans("０１２３４５６７８９．－", "0123456789.-")
BATCH = 2000


@dataclass(frozen=True, slots=True)
class ParsedRow:
    line: int
    community: str
    building: str
    unit: str
    room: str
    name: str
    role: str
    phones: tuple[str, ...]
    area: Decimal | None
    arrears: Decimal | None
    tags: tuple[str, ...]
    warnings: tuple[str, ...] = ()


@dataclass
class ImportReport:
    rows: int = 0
    imported: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[tuple[int, str]] = field(default_factory=list)
    """Rows imported with a cell left out or partly read: (line, Chinese message
    naming the row and column)."""
    people_created: int = 0
    people_updated: int = 0
    rooms_created: int = 0
    sheets_read: list[str] = field(default_factory=list)
    sheets_skipped: list[tuple[str, str]] = field(default_factory=list)  # (sheet, reason)

    @property
    def exit_code(self) -> int:
        return 1 if self.rejected else 0


def _table(model: type) -> Table:
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


class RowRejected(ValueError):
    pass


def _decimal(text: str, what: str) -> Decimal | None:
    text = _MONEY_CLEAN.sub("", text.translate(_FW))
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise RowRejected(f"{what}不是数字 / {what} is not a number: {text!r}") from None
    if not value.is_finite():
        raise RowRejected(f"{what}不是数字 / {what} is not a number: {text!r}")
    return value.quantize(Decimal("0.01"))


def _whole(text: str) -> str:
    """``1201.0`` (a number a sheet stored as a float) → ``1201``."""
    digits, _ = float_digits(text.strip())
    return digits if digits is not None else text


def _norm_place(text: str) -> str:
    text = _whole(text.translate(_FW).strip()).upper()
    for suffix in ("号楼", "栋", "幢", "座", "单元", "室", "号"):
        if text.endswith(suffix) and len(text) > len(suffix):
            text = text[: -len(suffix)]
    return text.strip()


def _label(columns: Mapping[str, str] | None, column: str) -> str:
    return (columns or {}).get(column) or f"（{COLUMNS[column][0]}）列"


def parse_row(line: int, row: dict[str, str], default_community: str | None,
              columns: Mapping[str, str] | None = None) -> ParsedRow:
    """One row, checked; ``columns`` names each column for messages (``G 列（手机）``)."""
    community = row.get("community", "").strip() or (default_community or "")
    if not community:
        raise RowRejected("缺少小区 / no community")
    building = _norm_place(row.get("building", ""))
    room = _norm_place(row.get("room", ""))
    if not building:
        raise RowRejected("缺少楼栋 / no building")
    if not room:
        raise RowRejected("缺少房号 / no room")
    name = re.sub(r"\s+", "", row.get("name", ""))
    if not name:
        raise RowRejected("缺少姓名 / no name")
    if len(name) > 100:
        raise RowRejected("姓名过长 / name too long")
    role_text = row.get("role", "").strip()
    if role_text not in ROLE_NAMES:
        raise RowRejected(f"身份应为 业主/租户/家属 / role must be 业主, 租户 or 家属: {role_text!r}")
    phones: list[str] = []
    warnings: list[str] = []
    for column in ("phone", "phone2"):
        cell = read_phone_cell(row.get(column, ""))
        for raw, reason in cell.invalid:
            raise RowRejected(f"{_label(columns, column)}的电话号码无效（{reason}）/ "
                              f"invalid phone number: {raw!r}")
        for doubt in cell.doubts:
            warnings.append(f"第 {line} 行 {_label(columns, column)}：{doubt}")
        for number in cell.numbers:
            if number not in phones:
                phones.append(number)
    area = _decimal(row.get("area", ""), "建筑面积")
    if area is not None and area < 0:
        raise RowRejected(f"建筑面积为负数 / negative area: {area}")
    arrears = _decimal(row.get("arrears", ""), "欠费金额")
    tags = tuple(t for t in _TAG_SPLIT.split(row.get("tags", "").strip()) if t)
    return ParsedRow(line, community, building, _norm_place(row.get("unit", "")), room, name,
                     ROLE_NAMES[role_text], tuple(phones), area, arrears, tags, tuple(warnings))


class _Directory:
    """What exists, keyed the way rows name it; filled once, kept up to date."""

    def __init__(self) -> None:
        self.communities: dict[str, int] = {}
        self.buildings: dict[tuple[int, str], int] = {}
        self.units: dict[tuple[int, str], int] = {}
        self.rooms: dict[tuple[int, str], int] = {}
        self.fees: dict[int, tuple[Decimal | None, Decimal]] = {}
        self.tags: dict[str, int] = {}
        self.person_by_phone_name: dict[tuple[str, str], int] = {}
        self.person_by_room_name: dict[tuple[int, str], int] = {}
        self.person_phones: dict[int, set[str]] = {}
        self.person_links: dict[tuple[int, int], str] = {}
        self.person_tags: dict[int, set[int]] = {}

    async def load(self, s: AsyncSession) -> None:
        for cid, name in await s.execute(select(Community.id, Community.name)):
            self.communities[name] = cid
        for bid, cid, name in await s.execute(select(Building.id, Building.community_id, Building.name)):
            self.buildings[(cid, name)] = bid
        for uid, bid, name in await s.execute(select(Unit.id, Unit.building_id, Unit.name)):
            self.units[(bid, name)] = uid
        for rid, uid, number in await s.execute(select(Room.id, Room.unit_id, Room.number)):
            self.rooms[(uid, number)] = rid
        for rid, area, arrears in await s.execute(
            select(FeeAccount.room_id, FeeAccount.area_m2, FeeAccount.arrears)
        ):
            self.fees[rid] = (area, arrears)
        for tid, name in await s.execute(select(Tag.id, Tag.name)):
            self.tags[name] = tid
        names = dict((pid, name) for pid, name in await s.execute(select(Person.id, Person.name)))
        for pid, number in await s.execute(select(PersonPhone.person_id, PersonPhone.number)):
            self.person_phones.setdefault(pid, set()).add(number)
            self.person_by_phone_name[(number, names[pid])] = pid
        for pid, rid, role in await s.execute(
            select(PersonRoom.person_id, PersonRoom.room_id, PersonRoom.role)
        ):
            self.person_links[(pid, rid)] = role
            self.person_by_room_name[(rid, names[pid])] = pid
        for pid, tid in await s.execute(select(person_tags.c.person_id, person_tags.c.tag_id)):
            self.person_tags.setdefault(pid, set()).add(tid)


async def _ensure(s: AsyncSession, table: type, cache: dict, keys: list, make: Callable) -> None:
    """Insert the missing keys in one multi-row statement and remember their ids.

    Ids come back from RETURNING; an autoincrement key is handed out in VALUES
    order, so the sorted ids line up with the rows. (Asking SQLAlchemy for
    ``sort_by_parameter_order`` makes SQLite insert row by row: 20x slower.)"""
    missing = [k for k in dict.fromkeys(keys) if k not in cache]
    if not missing:
        return
    result = await s.execute(
        insert(table).returning(table.id),  # type: ignore[attr-defined]
        [make(k) for k in missing],
    )
    for key, new_id in zip(missing, sorted(result.scalars().all()), strict=True):
        cache[key] = new_id


async def _apply_batch(s: AsyncSession, d: _Directory, rows: list[ParsedRow],
                       report: ImportReport) -> None:
    await _ensure(s, Community, d.communities, [r.community for r in rows],
                  lambda name: {"code": "c-" + uuid.uuid4().hex[:10],
                                "name": name, "timezone": "Asia/Shanghai", "hotline_numbers": []})
    b_keys = [(d.communities[r.community], r.building) for r in rows]
    await _ensure(s, Building, d.buildings, b_keys, lambda k: {"community_id": k[0], "name": k[1]})
    u_keys = [(d.buildings[bk], r.unit) for bk, r in zip(b_keys, rows, strict=True)]
    await _ensure(s, Unit, d.units, u_keys, lambda k: {"building_id": k[0], "name": k[1]})
    r_keys = [(d.units[uk], r.room) for uk, r in zip(u_keys, rows, strict=True)]
    before = len(d.rooms)
    await _ensure(s, Room, d.rooms, r_keys, lambda k: {"unit_id": k[0], "number": k[1]})
    report.rooms_created += len(d.rooms) - before
    room_ids = [d.rooms[k] for k in r_keys]
    await _ensure(s, Tag, d.tags, [t for r in rows for t in r.tags], lambda name: {"name": name})

    # Fee accounts: the owner's row carries area and arrears; last row wins.
    fee_new: dict[int, dict] = {}
    fee_upd: dict[int, dict] = {}
    for rid, r in zip(room_ids, rows, strict=True):
        if r.area is None and r.arrears is None:
            continue
        old = d.fees.get(rid)
        if old is None and rid in fee_new:
            old = (fee_new[rid]["area_m2"], fee_new[rid]["arrears"])
        area = r.area if r.area is not None else (old[0] if old else None)
        arrears = r.arrears if r.arrears is not None else (old[1] if old else Decimal("0"))
        if rid in d.fees or rid in fee_upd:
            if d.fees.get(rid) != (area, arrears):
                fee_upd[rid] = {"rid": rid, "area_m2": area, "arrears": arrears}
                d.fees[rid] = (area, arrears)
        else:
            fee_new[rid] = {"room_id": rid, "area_m2": area, "arrears": arrears}
    if fee_new:
        await s.execute(insert(FeeAccount), list(fee_new.values()))
        for rid, v in fee_new.items():
            d.fees[rid] = (v["area_m2"], v["arrears"])
    if fee_upd:
        await s.execute(
            update(_table(FeeAccount))
            .where(_table(FeeAccount).c.room_id == bindparam("rid"))
            .values(area_m2=bindparam("area_m2"), arrears=bindparam("arrears")),
            list(fee_upd.values()),
        )

    # People: match by (phone, name), then (room, name); otherwise new.
    person_for_row: list[int | None] = []
    new_people: dict[tuple[int, str], int] = {}
    pending: list[tuple[int, ParsedRow]] = []
    for idx, (rid, r) in enumerate(zip(room_ids, rows, strict=True)):
        pid = next((d.person_by_phone_name[(p, r.name)] for p in r.phones
                    if (p, r.name) in d.person_by_phone_name), None)
        if pid is None:
            pid = d.person_by_room_name.get((rid, r.name))
        person_for_row.append(pid)
        if pid is None:
            pending.append((idx, r))
    if pending:
        # New people: rows of one new person (two rooms, one phone) share a key.
        key_by_phone: dict[tuple[str, str], tuple[int, str]] = {}
        keys: list[tuple[int, str]] = []
        for idx, r in pending:
            key = next((key_by_phone[(p, r.name)] for p in r.phones if (p, r.name) in key_by_phone),
                       (room_ids[idx], r.name))
            for p in r.phones:
                key_by_phone.setdefault((p, r.name), key)
            keys.append(key)
        uniq = list(dict.fromkeys(keys))
        await _ensure(s, Person, new_people, uniq, lambda k: {"name": k[1], "note": ""})
        report.people_created += len(uniq)
        for (idx, _r), key in zip(pending, keys, strict=True):
            person_for_row[idx] = new_people[key]

    phone_rows: list[dict[str, object]] = []
    link_rows: list[dict[str, object]] = []
    role_updates: list[dict[str, object]] = []
    tag_rows: list[dict[str, object]] = []
    touched: set[int] = set()
    for rid, r, pid in zip(room_ids, rows, person_for_row, strict=True):
        assert pid is not None
        changed = False
        have = d.person_phones.setdefault(pid, set())
        for pos, number in enumerate(r.phones):
            if number not in have:
                have.add(number)
                phone_rows.append({"person_id": pid, "number": number, "raw": number,
                                   "kind": phone_kind(number), "position": pos})
                changed = True
            d.person_by_phone_name[(number, r.name)] = pid
        link = d.person_links.get((pid, rid))
        if link is None:
            link_rows.append({"person_id": pid, "room_id": rid, "role": r.role})
            d.person_links[(pid, rid)] = r.role
            changed = True
        elif link != r.role:
            role_updates.append({"pid": pid, "rid": rid, "role": r.role})
            d.person_links[(pid, rid)] = r.role
            changed = True
        d.person_by_room_name[(rid, r.name)] = pid
        have_tags = d.person_tags.setdefault(pid, set())
        for t in r.tags:
            tid = d.tags[t]
            if tid not in have_tags:
                have_tags.add(tid)
                tag_rows.append({"person_id": pid, "tag_id": tid})
                changed = True
        if changed:
            touched.add(pid)
    if phone_rows:
        await s.execute(insert(PersonPhone), phone_rows)
    if link_rows:
        await s.execute(insert(PersonRoom), link_rows)
    if role_updates:
        links = _table(PersonRoom)
        await s.execute(
            update(links).where(links.c.person_id == bindparam("pid"), links.c.room_id == bindparam("rid"))
            .values(role=bindparam("role")),
            role_updates,
        )
    if tag_rows:
        await s.execute(insert(person_tags), tag_rows)
    created = set(new_people.values())
    report.people_updated += len(touched - created)
    report.imported += len(rows)


class _Importer:
    """Rows in, batches applied: one directory and one report across sheets."""

    def __init__(self, s: AsyncSession, default_community: str | None,
                 progress: Callable[[int], None] | None) -> None:
        self.s = s
        self.default_community = default_community
        self.progress = progress
        self.report = ImportReport()
        self.directory = _Directory()
        self.batch: list[ParsedRow] = []

    async def feed(self, rows: Iterable[tuple[int, dict[str, str]]], *, sheet: str = "",
                   columns: Mapping[str, str] | None = None) -> None:
        where = f"工作表「{sheet}」" if sheet else ""
        report = self.report
        for line, raw in rows:
            report.rows += 1
            try:
                parsed = parse_row(line, raw, self.default_community, columns)
            except RowRejected as exc:
                report.rejected.append((line, where + str(exc)))
                continue
            report.warnings += [(line, where + w) for w in parsed.warnings]
            self.batch.append(parsed)
            if len(self.batch) >= BATCH:
                await self.flush()

    async def flush(self) -> None:
        if not self.batch:
            return
        await _apply_batch(self.s, self.directory, self.batch, self.report)
        await self.s.commit()
        if self.progress:
            self.progress(len(self.batch))
        self.batch = []


async def import_rows(
    sm: async_sessionmaker[AsyncSession],
    rows: Iterable[tuple[int, dict[str, str]]],
    *,
    default_community: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    async with sm() as s:
        importer = _Importer(s, default_community, progress)
        await importer.directory.load(s)
        await importer.feed(rows)
        await importer.flush()
    return importer.report


async def import_file(
    sm: async_sessionmaker[AsyncSession],
    path: Path,
    *,
    default_community: str | None = None,
    progress: Callable[[int], None] | None = None,
    sheet: str | None = None,
) -> ImportReport:
    """Import a spreadsheet: every sheet with a recognisable header, or only
    ``sheet``. Raises ``FileUnusable`` before touching the database when the
    file cannot be used at all (no sheet with a header)."""
    book = open_workbook(path, sheet)
    try:
        async with sm() as s:
            importer = _Importer(s, default_community, progress)
            await importer.directory.load(s)
            named = len(book.sheets) > 1
            for one in book.sheets:
                await importer.feed(one.rows(), sheet=one.name if named else "",
                                    columns=one.header.labels)
                if one.name:
                    importer.report.sheets_read.append(one.name)
            await importer.flush()
    finally:
        book.close()
    importer.report.sheets_skipped = list(book.skipped)
    return importer.report
