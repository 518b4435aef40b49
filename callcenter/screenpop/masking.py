"""Who sees a caller's full number.

The rule, kept simple on purpose:

* ``supervisor`` and ``admin`` always see full numbers;
* ``agent`` and ``night_duty`` see full numbers only on the pop of a call that
  rang them (they may need to call back); in search results and history they
  see ``138****5678``;
* everyone else (``engineer``) always sees masked numbers.
"""

from __future__ import annotations

import copy
from typing import Any

from callcenter.directory.phones import mask_phone, national_display

ALWAYS_FULL = frozenset({"supervisor", "admin"})
FULL_ON_OWN_CALL = frozenset({"agent", "night_duty"})


def sees_full_numbers(role: str, *, own_call: bool) -> bool:
    if role in ALWAYS_FULL:
        return True
    return role in FULL_ON_OWN_CALL and own_call


def show_number(e164: str, full: bool) -> str:
    if not e164:
        return ""
    return national_display(e164) if full else mask_phone(e164)


def present_pop(pop: dict[str, Any], role: str, *, own_call: bool) -> dict[str, Any]:
    """The pop with every phone number shown as this viewer may see it: new dicts
    where numbers are, the rest (rooms, tickets, calls) shared with ``pop``, so treat
    it as read-only beyond its top level. Made for every frame sent, so no deep copy."""
    full = sees_full_numbers(role, own_call=own_call)
    out = dict(pop)
    caller = dict(pop.get("caller") or {})
    raw = caller.pop("e164", "") or ""
    caller["display"] = show_number(raw, full) if raw else caller.get("display", "")
    caller["masked"] = not full
    caller["callable"] = bool(raw)
    out["caller"] = caller
    for group in ("people", "household"):
        if group in pop:
            out[group] = [{**person, "phones": [show_number(p, full)
                                                for p in person.get("phones", [])]}
                          for person in pop[group]]
    return out


def present_people(people: list[dict[str, Any]], role: str) -> list[dict[str, Any]]:
    """Search results: never on a call, so masked for agents."""
    full = sees_full_numbers(role, own_call=False)
    out = copy.deepcopy(people)
    for person in out:
        person["phones"] = [show_number(p, full) for p in person.get("phones", [])]
    return out
