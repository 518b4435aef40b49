"""The site's holiday file as an admin edits it: import a file, add or remove a day,
mark a year complete. Each change is checked, written whole to a temporary file and
moved into place (a crash leaves the old file or the new one, never half of one),
then the running calendar reloads it (``HolidayFile.reload``). The same code backs
``callcenter holidays import``.

The file lives under the server's data directory: on two servers each reads its
own (docs/HA.md): make the change on both, or keep the data directory's
``holidays.csv`` on storage both mount.
"""

from __future__ import annotations

import os
import tempfile
from datetime import date
from pathlib import Path

from ivr.holidays import HolidayCalendar, HolidayFile, HolidayFileError

MAX_IMPORT_BYTES = 256 * 1024
KINDS = ("holiday", "workday")
MAX_NAME = 40


class HolidayStore:
    def __init__(self, target: Path, running: HolidayFile | None = None) -> None:
        self.target = target
        self._running = running

    def current(self) -> HolidayCalendar:
        """The file's days as they are on disk (empty when there is no file)."""
        cal = HolidayCalendar()
        if self.target.exists():
            cal.load_file(self.target)
        return cal

    def import_text(self, text: str, *, name: str = "导入的文件", suffix: str = ".csv") -> int:
        """Validate ``text`` (a CSV or, with ``suffix`` ``.toml``, a TOML holiday file)
        and add its days (they win over the file's); returns how many it had. A bad
        file raises ``HolidayFileError`` naming ``name`` and the line, and nothing is
        written."""
        if len(text.encode("utf-8")) > MAX_IMPORT_BYTES:
            raise HolidayFileError(f"文件超过 {MAX_IMPORT_BYTES // 1024} KB / file too large")
        incoming = HolidayCalendar()
        count = incoming.load_text(text, name=name, toml=suffix == ".toml")
        merged = self.current()
        merged.merge(incoming)
        self._write(merged)
        return count

    def set_day(self, day: date, kind: str, name: str) -> None:
        if kind not in KINDS:
            raise HolidayFileError(f"kind must be holiday or workday, not {kind!r}")
        name = " ".join(name.split())
        if any(c in name for c in ",\"\r\n"):
            raise HolidayFileError("名称不能含逗号或引号 / the name may not contain , or \"")
        if len(name) > MAX_NAME:
            raise HolidayFileError(f"名称最多 {MAX_NAME} 个字 / name too long")
        cal = self.current()
        cal.overrides[day] = (kind, name)
        self._write(cal)

    def remove_day(self, day: date) -> bool:
        """Drop the file's entry for ``day`` (the package's or the computed day shows
        again); False when the file had none."""
        cal = self.current()
        if cal.overrides.pop(day, None) is None:
            return False
        self._write(cal)
        return True

    def mark_complete(self, year: int) -> None:
        cal = self.current()
        cal.complete_years.add(year)
        self._write(cal)

    def _write(self, cal: HolidayCalendar) -> None:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.target.parent, prefix=".holidays-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(cal.to_csv())
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if self._running is not None:
            self._running.reload()
