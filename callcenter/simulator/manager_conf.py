"""The users of a manager.conf text: secret and ``read=`` classes, as the stand-in needs them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from callcenter.ami.event_classes import parse_classes

_SECTION = re.compile(r"^\[([^\]]+)\]")


@dataclass(frozen=True, slots=True)
class ManagerUser:
    secret: str
    #: the ``read=`` line as written (Asterisk's default for a user without one: none)
    read: str = ""

    @property
    def read_classes(self) -> frozenset[str] | None:
        """None: every class."""
        return parse_classes(self.read)


def parse_manager_conf(text: str) -> dict[str, ManagerUser]:
    """Each ``[user]`` section (not ``[general]``) with its ``secret`` and ``read``."""
    users: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = re.sub(r"(?<!\\);.*", "", raw).strip()
        if not line or line.startswith("#"):
            continue
        if m := _SECTION.match(line):
            name = m[1].strip()
            current = None if name == "general" else users.setdefault(name, {})
            continue
        key, sep, value = line.partition("=")
        if current is not None and sep:
            key = key.strip().lower()
            value = value.lstrip(">").strip()
            # several read= lines add up in Asterisk
            current[key] = f"{current[key]},{value}" if key == "read" and key in current else value
    return {name: ManagerUser(secret=opts.get("secret", ""), read=opts.get("read", ""))
            for name, opts in users.items()}
