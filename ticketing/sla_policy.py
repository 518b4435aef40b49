"""The SLA policy of work orders: how long each step may take, per community,
category and priority.

Three clocks (``KINDS``) run on a ticket:

- ``response``: someone acts on it (派单, or any move out of 新建) within 15 minutes;
- ``red_light``: the assignee takes it (接单) within 2 hours, else a red light;
- ``escalation``: it is done (完工) within 24 hours, else the supervisor is told.

Emergencies run tighter (5 min / 30 min / 4 h). The built-in defaults are
``DEFAULTS``; ``<data_dir>/sla.toml`` (``SLA_FILE``) changes them for every
community, a category, one community, or a category in one community::

    [normal]                 # minutes, for every community
    response = 15
    red_light = 120
    escalation = 1440

    [emergency]
    escalation = 180

    [categories.sanitation]  # a category's own limits, and "working time only"
    working_time = true
    normal = { escalation = 2880 }

    [communities.hy.normal]  # one community (its code)
    response = 10

    [communities.hy.categories.noise]
    working_time = false

The most specific table wins key by key: a community's category, then the
community, then the category, then the file's top level, then ``DEFAULTS``.

**Complaints** (category ``complaint``) run by their grade (投诉分级,
``GRADE_DEFAULTS``): 一般 ``general`` as any ticket of the category (the layers
above), 重要 ``important`` 10 min / 1 h / 12 h, 重大 ``major`` 5 min / 30 min /
4 h. A ``[complaint.<grade>]`` table, at the top level or in a community, changes
a grade's limits (the community's wins key by key)::

    [complaint.major]
    escalation = 120

    [communities.hy.complaint.important]
    response = 5

An emergency complaint never runs slower than an emergency: each limit is the
shorter of the grade's and the emergency's. ``working_time`` is the category's.

**Group incidents** (群发事件, ``ticketing.groups``) read their rule here too: a
``[groups]`` table (``window`` minutes, ``threshold`` households, ``enabled``) at the
top level or per community (``[communities.<code>.groups]``), key by key
(``GroupRule``; defaults 120 minutes, 2 households).

``working_time = true``: the category's clocks count only office hours (the
IVR's time conditions: weekday hours, 调休 and holidays; a ``WorkingHours``
port), so a ticket filed on Friday evening is due on Monday, and a holiday week
is skipped. The count is done in whole minutes when a clock is armed.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from ticketing.categories import CATEGORIES, COMPLAINT, COMPLAINT_GRADES, PRIORITIES

SLA_FILE = "sla.toml"
KINDS = ("response", "red_light", "escalation")
KIND_LABELS: dict[str, str] = {"response": "响应超时", "red_light": "接单超时（红灯）",
                               "escalation": "完工超时（已升级）"}
MAX_MINUTES = 60 * 24 * 60  # 60 days: a limit beyond that is a typo
MAX_WORKING_SPAN = timedelta(days=400)
"""How far ahead a working-time clock looks for office hours before giving up."""


class SlaPolicyError(ValueError):
    """An SLA file is invalid; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class Limits:
    """The three limits of one (community, category, priority), and whether they count
    working time only."""

    response: timedelta
    red_light: timedelta
    escalation: timedelta
    working_time: bool = False

    def of(self, kind: str) -> timedelta:
        value: timedelta = getattr(self, kind)
        return value


def _m(minutes: int) -> timedelta:
    return timedelta(minutes=minutes)


DEFAULTS: dict[str, Limits] = {
    "normal": Limits(_m(15), _m(120), _m(24 * 60)),
    "emergency": Limits(_m(5), _m(30), _m(4 * 60)),
}
assert set(DEFAULTS) == set(PRIORITIES)

GRADE_DEFAULTS: dict[str, Limits | None] = {
    "general": None,  # a complaint like any other: the priority's limits
    "important": Limits(_m(10), _m(60), _m(12 * 60)),
    "major": Limits(_m(5), _m(30), _m(4 * 60)),
}
assert set(GRADE_DEFAULTS) == set(COMPLAINT_GRADES)

GROUP_NOTICE = "group_notice"
"""The ``sla_timers`` kind of a group incident's notice to the supervisors: armed on the
ticket whose report opened the incident, due at once, fired and told once."""
NOTICE_KINDS = ("major_complaint", GROUP_NOTICE)

MAJOR_NOTICE = "major_complaint"
"""The ``sla_timers`` kind of a 重大投诉's notice to the supervisors: due at once,
fired and told once per ticket by the SLA worker (not a breach: no badge, no metric)."""


def breach_text(kind: str, limit: timedelta, *, working_time: bool = False) -> str:
    """What the ticket page and the notice say: 超过15分钟未响应, 2小时未接单,
    24小时未完工，已升级主管."""
    if kind == MAJOR_NOTICE:
        return "重大投诉，请主管立即跟进"
    if kind == GROUP_NOTICE:
        return "群发事件（一事多报），请主管统筹处理"
    span = _span(limit) + ("（工作时间）" if working_time else "")
    if kind == "response":
        return f"超过{span}未响应"
    if kind == "red_light":
        return f"{span}未接单"
    return f"{span}未完工，已升级主管"


def _span(limit: timedelta) -> str:
    minutes = int(limit.total_seconds() // 60)
    if minutes % 60 == 0 and minutes >= 60:
        return f"{minutes // 60}小时"
    return f"{minutes}分钟"


@dataclass(frozen=True, slots=True)
class _Layer:
    """What one table of the file sets: per priority a dict of kind → minutes, and
    maybe ``working_time``."""

    minutes: dict[str, dict[str, int]] = field(default_factory=dict)
    working_time: bool | None = None
    grades: dict[str, dict[str, int]] = field(default_factory=dict)  # [complaint.<grade>]


@dataclass(frozen=True, slots=True)
class GroupRule:
    """When reports make one group incident (``ticketing.groups``): ``threshold``
    households of one building (one community when none is known) and a
    building-wide category within ``window`` of each other; ``enabled`` false: never."""

    window: timedelta = timedelta(minutes=120)
    threshold: int = 2
    enabled: bool = True


GROUP_KEYS = ("window", "threshold", "enabled")
MAX_GROUP_THRESHOLD = 100


def _group_table(raw: Any, where: str) -> dict[str, Any]:
    """``[groups]``: ``window`` minutes, ``threshold`` households, ``enabled``."""
    if not isinstance(raw, dict):
        raise SlaPolicyError(f"{where}: groups: expected a table (window, threshold, enabled)")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "window":
            if isinstance(value, bool) or not isinstance(value, int) or not \
                    1 <= value <= MAX_MINUTES:
                raise SlaPolicyError(f"{where}: groups.window: expected whole minutes "
                                     f"1-{MAX_MINUTES}, got {value!r}")
            out[key] = value
        elif key == "threshold":
            if isinstance(value, bool) or not isinstance(value, int) or not \
                    2 <= value <= MAX_GROUP_THRESHOLD:
                raise SlaPolicyError(f"{where}: groups.threshold: expected a number of "
                                     f"households 2-{MAX_GROUP_THRESHOLD}, got {value!r}")
            out[key] = value
        elif key == "enabled":
            if not isinstance(value, bool):
                raise SlaPolicyError(f"{where}: groups.enabled: expected true or false")
            out[key] = value
        else:
            raise SlaPolicyError(f"{where}: groups.{key}: unknown key "
                                 f"(known: {', '.join(GROUP_KEYS)})")
    return out


@dataclass(frozen=True)
class SlaPolicy:
    top: _Layer = field(default_factory=_Layer)
    categories: dict[str, _Layer] = field(default_factory=dict)
    communities: dict[str, _Layer] = field(default_factory=dict)
    community_categories: dict[tuple[str, str], _Layer] = field(default_factory=dict)
    source: str = "<defaults>"
    groups: dict[str, Any] = field(default_factory=dict)  # [groups]
    community_groups: dict[str, dict[str, Any]] = field(default_factory=dict)

    def group_rule(self, community: str | None) -> GroupRule:
        """The group-incident rule of ``community`` (its code): its ``[groups]`` table
        over the file's over the defaults, key by key."""
        values = {**self.groups, **(self.community_groups.get(community, {})
                                    if community else {})}
        rule = GroupRule()
        if "window" in values:
            rule = replace(rule, window=_m(values["window"]))
        if "threshold" in values:
            rule = replace(rule, threshold=values["threshold"])
        if "enabled" in values:
            rule = replace(rule, enabled=values["enabled"])
        return rule

    def limits(self, community: str | None, category: str, priority: str,
               grade: str | None = None) -> Limits:
        """The limits for a ticket of ``community`` (its code), ``category``, ``priority``
        and, for a complaint, its ``grade``."""
        out = self._limits(community, category, priority)
        if category != COMPLAINT or grade not in GRADE_DEFAULTS:
            return out
        graded = GRADE_DEFAULTS[grade] or out
        for layer in (self.top, self.communities.get(community) if community else None):
            if layer is not None and layer.grades.get(grade):
                values: dict[str, Any] = {k: _m(m) for k, m in layer.grades[grade].items()}
                graded = replace(graded, **values)
        if priority == "emergency":
            shorter: dict[str, Any] = {k: min(graded.of(k), out.of(k)) for k in KINDS}
            graded = replace(graded, **shorter)
        return replace(graded, working_time=out.working_time)

    def _limits(self, community: str | None, category: str, priority: str) -> Limits:
        base = DEFAULTS.get(priority, DEFAULTS["normal"])
        layers = [self.top, self.categories.get(category)]
        if community is not None:
            layers += [self.communities.get(community),
                       self.community_categories.get((community, category))]
        out = base
        for layer in layers:
            if layer is None:
                continue
            values: dict[str, Any] = {k: _m(m) for k, m in layer.minutes.get(priority, {}).items()}
            if values:
                out = replace(out, **values)
            if layer.working_time is not None:
                out = replace(out, working_time=layer.working_time)
        return out


def _kinds(value: Any, where: str, key: str) -> dict[str, int]:
    """A table of limits (``response``, ``red_light``, ``escalation``) in minutes."""
    if not isinstance(value, dict):
        raise SlaPolicyError(f"{where}: {key}: expected a table of "
                             f"{', '.join(KINDS)} in minutes")
    out: dict[str, int] = {}
    for kind, m in value.items():
        if kind not in KINDS:
            raise SlaPolicyError(f"{where}: {key}.{kind}: unknown limit "
                                 f"(known: {', '.join(KINDS)})")
        if isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= MAX_MINUTES:
            raise SlaPolicyError(f"{where}: {key}.{kind}: expected whole minutes "
                                 f"1-{MAX_MINUTES}, got {m!r}")
        out[kind] = m
    return out


def _layer(raw: Any, where: str, *, categories: bool) -> tuple[_Layer, dict[str, _Layer]]:
    if not isinstance(raw, dict):
        raise SlaPolicyError(f"{where}: expected a table")
    minutes: dict[str, dict[str, int]] = {}
    grades: dict[str, dict[str, int]] = {}
    working: bool | None = None
    nested: dict[str, _Layer] = {}
    for key, value in raw.items():
        if key in PRIORITIES:
            minutes[key] = _kinds(value, where, key)
        elif key == "complaint" and categories:
            if not isinstance(value, dict):
                raise SlaPolicyError(f"{where}: complaint: expected tables "
                                     f"[complaint.<grade>] ({', '.join(COMPLAINT_GRADES)})")
            for grade, sub in value.items():
                if grade not in COMPLAINT_GRADES:
                    raise SlaPolicyError(f"{where}: complaint.{grade}: unknown grade "
                                         f"(known: {', '.join(COMPLAINT_GRADES)})")
                grades[grade] = _kinds(sub, where, f"complaint.{grade}")
        elif key == "working_time":
            if not isinstance(value, bool):
                raise SlaPolicyError(f"{where}: working_time: expected true or false")
            working = value
        elif key == "categories" and categories:
            if not isinstance(value, dict):
                raise SlaPolicyError(f"{where}: categories: expected tables")
            for cat, sub in value.items():
                if cat not in CATEGORIES:
                    raise SlaPolicyError(f"{where}: categories.{cat}: unknown category "
                                         f"(known: {', '.join(CATEGORIES)})")
                nested[cat], _ = _layer(sub, f"{where}: categories.{cat}", categories=False)
        else:
            raise SlaPolicyError(f"{where}: {key}: unknown key")
    return _Layer(minutes, working, grades), nested


def parse_policy(data: dict[str, Any], source: str) -> SlaPolicy:
    """``[normal]``/``[emergency]``, ``[categories.<key>]``, ``[complaint.<grade>]``
    and ``[communities.<code>]`` (itself with priorities, ``working_time``,
    ``categories`` and ``complaint``), see the module's doc."""
    communities_raw = data.get("communities", {})
    rest = {k: v for k, v in data.items() if k not in ("communities", "groups")}
    groups = _group_table(data["groups"], source) if "groups" in data else {}
    if "working_time" in rest:
        raise SlaPolicyError(f"{source}: working_time: set it per category "
                             "([categories.<key>] working_time = true)")
    top, categories = _layer(rest, source, categories=True)
    if not isinstance(communities_raw, dict):
        raise SlaPolicyError(f"{source}: communities: expected tables")
    communities: dict[str, _Layer] = {}
    per_category: dict[tuple[str, str], _Layer] = {}
    community_groups: dict[str, dict[str, Any]] = {}
    for code, raw in communities_raw.items():
        where = f"{source}: [communities.{code}]"
        if isinstance(raw, dict) and "groups" in raw:
            community_groups[code] = _group_table(raw["groups"], where)
            raw = {k: v for k, v in raw.items() if k != "groups"}
        layer, cats = _layer(raw, where, categories=True)
        communities[code] = layer
        for cat, sub in cats.items():
            per_category[(code, cat)] = sub
    return SlaPolicy(top, categories, communities, per_category, source, groups,
                     community_groups)


def load_policy(path: Path) -> SlaPolicy:
    """The file's policy, or the defaults when there is no file."""
    if not path.exists():
        return SlaPolicy()
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise SlaPolicyError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SlaPolicyError(f"{path}: not valid TOML: {exc}") from None
    return parse_policy(data, str(path))


# --------------------------------------------------------------------------- working time

class WorkingHours(Protocol):
    """Is ``at`` within office hours for the community (its code)? The composition
    root answers from the IVR's time conditions and holidays."""

    def is_working(self, community: str | None, at: datetime) -> bool: ...


def due_after(start: datetime, limit: timedelta, *, working_time: bool = False,
              hours: WorkingHours | None = None, community: str | None = None) -> datetime:
    """When a clock started at ``start`` with ``limit`` runs out: clock time, or, with
    ``working_time``, after ``limit`` of office hours (counted minute by minute,
    jumping over closed hours an hour at a time when the hour is closed at both ends)."""
    if not working_time or hours is None:
        return start + limit
    step = timedelta(minutes=1)
    hour = timedelta(hours=1)
    left = int(limit.total_seconds() // 60)
    t = start
    end = start + MAX_WORKING_SPAN
    while left > 0 and t < end:
        if not hours.is_working(community, t):
            # Skip a closed hour at once when its end is closed as well and the
            # hour is closed all along (office hours change on whole minutes; a
            # 59-minute opening inside a closed hour is not a real timetable).
            if not hours.is_working(community, t + hour) and not _opens_within(
                    hours, community, t, hour):
                t += hour
                continue
            t += step
            continue
        t += step
        left -= 1
    return t


def _opens_within(hours: WorkingHours, community: str | None, t: datetime,
                  span: timedelta) -> bool:
    """Does office time begin somewhere in ``(t, t + span)``? Checked every 15 minutes
    (hours in time conditions start on the quarter hour or are checked by the
    minute-by-minute walk once near)."""
    probe = t + timedelta(minutes=15)
    while probe < t + span:
        if hours.is_working(community, probe):
            return True
        probe += timedelta(minutes=15)
    return False
