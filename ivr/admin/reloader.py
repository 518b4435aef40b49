"""Reloading the menus (and the holiday file), from SIGHUP or an admin's button,
with a record of how it went.

A reload validates every file first; a broken edit leaves the menus in force
untouched and is kept as ``last_error`` for the admin page. Calls in progress
finish on the menu set they started with (``MenuStore`` swaps, never edits)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from callcenter.clock import Clock
from ivr.errors import MenuError
from ivr.holidays import HolidayFile, HolidayFileError
from ivr.menus import MenuSet, MenuStore

log = logging.getLogger(__name__)


@dataclass
class ReloadOutcome:
    at: datetime
    by: str
    ok: bool
    version: int
    error: str = ""


class MenuReloader:
    def __init__(self, store: MenuStore, clock: Clock, *,
                 holidays: HolidayFile | None = None) -> None:
        self.store = store
        self.holidays = holidays
        self._clock = clock
        menus = store.current()
        self.loaded_at = clock.now()
        self.loaded_by = "start-up"
        self.last: ReloadOutcome | None = None
        self._version = menus.version

    def reload(self, by: str) -> MenuSet:
        """Validate and swap in the menu file(s); on an error the old menus stay and
        the error (naming file, menu and key) is raised and remembered."""
        now = self._clock.now()
        if self.holidays is not None:  # its own outcome: a bad menu does not stop it
            try:
                count = self.holidays.reload()
                log.info("holidays reloaded from %s by %s (%d days)", self.holidays.path, by, count)
            except HolidayFileError as exc:
                log.error("holidays not reloaded (asked by %s), the old ones stay: %s", by, exc)
        try:
            menus = self.store.reload()
        except MenuError as exc:
            self.last = ReloadOutcome(now, by, False, self.store.current().version, str(exc))
            log.error("menus not reloaded (asked by %s), the old ones stay: %s", by, exc)
            raise
        self.loaded_at, self.loaded_by = now, by
        self.last = ReloadOutcome(now, by, True, menus.version)
        log.info("menus reloaded from %s by %s (version %d)", menus.source, by, menus.version)
        return menus

    def status(self) -> dict[str, Any]:
        menus = self.store.current()
        return {
            "version": menus.version,
            "source": menus.source,
            "files": [{"community": c, "source": m.source}
                      for c, m in self.store.all().items() if c is None or m is not menus],
            "loaded_at": self.loaded_at.isoformat(),
            "loaded_by": self.loaded_by,
            "menus": [{"name": name, "label": menu.label, "options": len(menu.options)}
                      for name, menu in menus.menus.items()],
            "entry": dict(menus.entry),
            "holidays_error": self.holidays.error if self.holidays else "",
            "last_reload": None if self.last is None else {
                "at": self.last.at.isoformat(), "by": self.last.by, "ok": self.last.ok,
                "version": self.last.version, "error": self.last.error},
        }
