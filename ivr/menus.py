"""Menus declared in TOML, validated once on load, swapped atomically on reload.

A call keeps the ``MenuSet`` it started with, so a reload (SIGHUP or the admin
action) never changes a menu under a caller's feet.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ivr.errors import MenuError
from ivr.outages.prompts import is_outage_prompt

DEFAULT_MENUS = Path(__file__).parent / "menus" / "default.toml"
MODES = ("office", "night", "weekend", "holiday")
DIGITS = set("0123456789*#")
ONCALL_ROLES = ("agent", "night_duty", "engineer", "supervisor")

# action → (required args, optional args)
ACTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "menu": (("menu",), ()),
    "queue": (("queue",), ()),
    "route_oncall": (("role",), ()),
    "voicemail": (("mailbox",), ("prompt",)),
    "emergency": (("category",), ()),
    "ticket_status": ((), ()),
    "fee_balance": ((), ()),
    "transfer": (("extension",), ()),
    "hangup": ((), ()),
}


@dataclass(frozen=True, slots=True)
class Action:
    kind: str
    args: MappingProxyType[str, str]
    label: str = ""

    def arg(self, name: str) -> str:
        return self.args[name]


@dataclass(frozen=True, slots=True)
class Menu:
    name: str
    label: str
    prompts: tuple[str, ...]
    options: MappingProxyType[str, Action]
    fallback: Action
    timeout_s: float = 6.0
    max_retries: int = 2
    invalid_prompt: str | None = None
    timeout_prompt: str | None = None


@dataclass(frozen=True)
class MenuSet:
    source: str
    prompts: MappingProxyType[str, str]
    menus: MappingProxyType[str, Menu]
    entry: MappingProxyType[str, str]
    safe_fallback: MappingProxyType[str, Action]
    version: int = 0
    community: str | None = None  # the community whose own menus these are; None: shared

    def entry_menu(self, mode: str) -> Menu:
        return self.menus[self.entry[mode]]


def _err(source: str, where: str, key: str, message: str) -> MenuError:
    return MenuError(f"{source}: {where}: {key}: {message}")


def _action(raw: Any, source: str, where: str, key: str, prompts: dict[str, str]) -> Action:
    if not isinstance(raw, dict):
        raise _err(source, where, key, "expected a table like { action = \"queue\", queue = \"frontdesk\" }")
    kind = raw.get("action")
    if kind not in ACTIONS:
        raise _err(source, where, key, f"unknown action {kind!r}; one of {', '.join(ACTIONS)}")
    required, optional = ACTIONS[kind]
    args = {k: v for k, v in raw.items() if k not in ("action", "label")}
    for name in required:
        value = args.get(name)
        if not isinstance(value, str) or not value.strip():
            raise _err(source, where, key, f"action {kind!r} needs a non-empty {name!r}")
    for name in args:
        if name not in required and name not in optional:
            raise _err(source, where, key, f"action {kind!r} takes no argument {name!r}")
    if kind == "route_oncall" and args["role"] not in ONCALL_ROLES:
        raise _err(source, where, key, f"role must be one of {', '.join(ONCALL_ROLES)}")
    if kind in ("voicemail", "transfer"):
        number = args["mailbox" if kind == "voicemail" else "extension"]
        if not number.isdigit():
            raise _err(source, where, key, f"{number!r} is not a mailbox or extension number")
    if "prompt" in args and args["prompt"] not in prompts and not is_outage_prompt(args["prompt"]):
        raise _err(source, where, key, f"unknown prompt {args['prompt']!r}")
    label = raw.get("label", "")
    return Action(kind, MappingProxyType({k: str(v) for k, v in args.items()}), str(label))


def _menu(name: str, raw: Any, source: str, prompts: dict[str, str]) -> Menu:
    where = f"menu {name!r}"
    if not isinstance(raw, dict):
        raise _err(source, where, name, "expected a table")
    known = {"label", "prompts", "options", "fallback", "timeout_s", "max_retries",
             "invalid_prompt", "timeout_prompt"}
    for key in raw:
        if key not in known:
            raise _err(source, where, key, "unknown key")
    names = raw.get("prompts", [])
    if not isinstance(names, list) or not names:
        raise _err(source, where, "prompts", "a menu needs at least one prompt")
    for key in ("invalid_prompt", "timeout_prompt"):
        if raw.get(key) is not None:
            names = [*names, raw[key]]
    for p in names:
        if p not in prompts and not is_outage_prompt(p):  # the notices' own are built in
            raise _err(source, where, "prompts", f"unknown prompt {p!r} (add it to [prompts])")
    if "fallback" not in raw:
        raise _err(source, where, "fallback", "missing fallback (where a caller goes after the retries)")
    options_raw = raw.get("options", {})
    if not isinstance(options_raw, dict) or not options_raw:
        raise _err(source, where, "options", "a menu needs options")
    options = {}
    for digit, opt in options_raw.items():
        if digit not in DIGITS:
            raise _err(source, where, f"options.{digit}", "an option key is one key: 0-9, * or #")
        options[digit] = _action(opt, source, where, f"options.{digit}", prompts)
    try:
        timeout_s = float(raw.get("timeout_s", 6))
        max_retries = int(raw.get("max_retries", 2))
    except (TypeError, ValueError):
        raise _err(source, where, "timeout_s", "timeout_s and max_retries must be numbers") from None
    if timeout_s <= 0 or max_retries < 0:
        raise _err(source, where, "timeout_s", "timeout_s must be > 0 and max_retries >= 0")
    return Menu(
        name=name, label=str(raw.get("label", name)), prompts=tuple(raw["prompts"]),
        options=MappingProxyType(options),
        fallback=_action(raw["fallback"], source, where, "fallback", prompts),
        timeout_s=timeout_s, max_retries=max_retries,
        invalid_prompt=raw.get("invalid_prompt"), timeout_prompt=raw.get("timeout_prompt"),
    )


def parse_menus(data: dict[str, Any], source: str, version: int = 0) -> MenuSet:
    prompts = data.get("prompts", {})
    if not isinstance(prompts, dict) or not all(isinstance(v, str) for v in prompts.values()):
        raise _err(source, "[prompts]", "prompts", "expected name = \"text\" pairs")
    menus_raw = data.get("menus", {})
    if not isinstance(menus_raw, dict) or not menus_raw:
        raise _err(source, "[menus]", "menus", "no menus defined")
    menus = {name: _menu(name, raw, source, prompts) for name, raw in menus_raw.items()}
    entry = data.get("entry", {})
    for mode in MODES:
        target = entry.get(mode)
        if target not in menus:
            raise _err(source, "[entry]", mode, f"entry menu {target!r} is not defined")
    safe_raw = data.get("safe_fallback", {})
    safe = {}
    for mode in MODES:
        if mode not in safe_raw:
            raise _err(source, "[safe_fallback]", mode, "missing fallback for this mode")
        safe[mode] = _action(safe_raw[mode], source, "[safe_fallback]", mode, prompts)
        if safe[mode].kind == "menu":
            raise _err(source, "[safe_fallback]", mode, "the safe fallback must not be a menu")
    # Every menu a sub-menu action names must exist; every menu must be reachable.
    reachable: set[str] = set()
    todo = [entry[m] for m in MODES]
    while todo:
        name = todo.pop()
        if name in reachable:
            continue
        reachable.add(name)
        menu = menus[name]
        for key, act in [*menu.options.items(), ("fallback", menu.fallback)]:
            if act.kind == "menu":
                if act.arg("menu") not in menus:
                    raise _err(source, f"menu {name!r}", f"options.{key}" if key != "fallback" else key,
                               f"sub-menu {act.arg('menu')!r} is not defined")
                todo.append(act.arg("menu"))
    for name in menus:
        if name not in reachable:
            raise _err(source, f"menu {name!r}", name, "unreachable: no entry or option leads here")
    community = data.get("community")
    if community is not None and (not isinstance(community, str) or not community.strip()):
        raise _err(source, "top level", "community", "expected a community code such as \"hupan\"")
    return MenuSet(source, MappingProxyType(dict(prompts)), MappingProxyType(menus),
                   MappingProxyType(dict(entry)), MappingProxyType(safe), version,
                   community.strip() if community else None)


_TOML_AT = re.compile(r"\(at line (\d+), column \d+\)")
_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]")


def _toml_error(source: str, text: str, exc: tomllib.TOMLDecodeError) -> MenuError:
    """Say which menu and key a TOML error sits in. TOML itself rejects a key
    given twice, so this is where "digit used twice" is reported."""
    m = _TOML_AT.search(str(exc))
    if not m:
        return MenuError(f"{source}: not valid TOML: {exc}")
    line_no = int(m.group(1))
    lines = text.splitlines()
    line = lines[line_no - 1] if 0 < line_no <= len(lines) else ""
    table = ""
    for previous in reversed(lines[:line_no - 1]):
        h = _HEADER.match(previous)
        if h:
            table = h.group(1).replace('"', "").replace(" ", "")
            break
    parts = table.split(".")
    where = f"menu {parts[1]!r}" if len(parts) >= 2 and parts[0] == "menus" else (
        f"[{table}]" if table else "top level")
    key = line.split("=", 1)[0].strip().strip('"') if "=" in line else ""
    if len(parts) == 3 and parts[2] == "options" and key:
        key = f"options.{key}"
    message = str(exc)
    if message.startswith(("Cannot overwrite a value", "Cannot mutate immutable namespace")):
        detail = "given twice (a digit or key used twice)"
    else:
        detail = f"not valid TOML: {message}"
    return MenuError(f"{source}: {where}: {key or f'line {line_no}'}: {detail} (line {line_no})")


def load_menus(path: Path, version: int = 0) -> MenuSet:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MenuError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise MenuError(f"{path}: not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(str(path), text, exc) from None
    return parse_menus(data, str(path), version)


class MenuStore:
    """The menus in force: one file shared by every community, and files of their
    own for some (a file with a top-level ``community = "code"``). ``reload()``
    validates every file before swapping any: a broken edit is reported and the
    old menus stay. Without a shared file, the first file serves everyone else."""

    def __init__(self, *paths: Path) -> None:
        self.paths: tuple[Path, ...] = tuple(paths) or (DEFAULT_MENUS,)
        self._sets: dict[str | None, MenuSet] | None = None

    @property
    def path(self) -> Path:
        return self.paths[0]

    def current(self, community: str | None = None) -> MenuSet:
        """The menus a call for ``community`` runs on (the shared set by default)."""
        sets = self.all()
        return (sets.get(community) or sets[None]) if community else sets[None]

    def all(self) -> dict[str | None, MenuSet]:
        """Every set in force, keyed by community (``None``: the shared one)."""
        if self._sets is None:
            self._sets = self._load_all(1)
        return self._sets

    def reload(self) -> MenuSet:
        version = self.current().version + 1 if self._sets else 1
        self._sets = self._load_all(version)
        return self._sets[None]

    def _load_all(self, version: int) -> dict[str | None, MenuSet]:
        sets: dict[str | None, MenuSet] = {}
        for path in self.paths:
            menus = load_menus(path, version)
            if menus.community in sets:
                other = sets[menus.community].source
                what = (f"community {menus.community!r}" if menus.community
                        else "the shared menus (no `community` key)")
                raise MenuError(f"{path}: community: {what} already come from {other}")
            sets[menus.community] = menus
        if None not in sets:
            sets[None] = sets[next(iter(sets))]
        return sets
