"""Who sees an owner's full number, and the masked form everyone else sees.

The one rule table, for pages, the JSON API, CSV exports, WebSocket frames and
the text of tickets alike:

* ``supervisor`` and ``admin`` always see full numbers;
* ``agent`` and ``night_duty`` see full numbers only on the pop of a call that
  rang them (they may need to call back); in search results, history, the call
  log, tickets and incidents they see ``138****5678``;
* everyone else (``engineer``, and a request nobody signed in to) always sees
  masked numbers.

``mask_json`` and ``mask_text`` apply it to whatever a response holds: every
number written anywhere in it (``callcenter.directory.phone_text``), in any
spelling, becomes its masked form, except the numbers a site publishes itself
(``keep``: its hotlines, its staff's phones). ``callcenter.web.masking`` runs
them on every HTTP response; ``present_pop`` on every pop frame.
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from typing import Any

from callcenter.directory.phone_text import mask_phone_numbers
from callcenter.directory.phones import national_display

ALWAYS_FULL = frozenset({"supervisor", "admin"})
FULL_ON_OWN_CALL = frozenset({"agent", "night_duty"})


def sees_full_numbers(role: str | None, *, own_call: bool) -> bool:
    if role in ALWAYS_FULL:
        return True
    return role in FULL_ON_OWN_CALL and own_call


def masked_number(e164: str) -> str:
    """``+8613812345678`` → ``138****5678``; ``+861012345678`` → ``010****5678``: the
    number as the site writes it, first three and last four digits kept."""
    digits = "".join(c for c in national_display(e164) if c.isdigit())
    if len(digits) <= 7:
        return digits[:1] + "*" * max(0, len(digits) - 3) + digits[-2:] if len(digits) > 3 else "***"
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def show_number(e164: str, full: bool) -> str:
    if not e164:
        return ""
    return national_display(e164) if full else masked_number(e164)


def mask_text(text: str, keep: Collection[str] = ()) -> str:
    """``text`` with every number in it masked, but those in ``keep`` (E.164)."""
    return mask_phone_numbers(text, keep=keep, mask=masked_number)


def mask_json(value: Any, keep: Collection[str] = ()) -> tuple[Any, bool]:
    """``value`` (decoded JSON) with every number in its strings, keys and integers
    masked; and whether anything changed (unchanged parts are the same objects)."""
    if isinstance(value, str):
        out = mask_text(value, keep)
        return out, out != value
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value, False
    if isinstance(value, int):
        text = str(value)
        out = mask_text(text, keep)
        return (out, True) if out != text else (value, False)
    if isinstance(value, dict):
        changed = False
        items: list[tuple[Any, Any]] = []
        for k, v in value.items():
            mk, ck = mask_json(k, keep)
            mv, cv = mask_json(v, keep)
            changed = changed or ck or cv
            items.append((mk, mv))
        return (dict(items), True) if changed else (value, False)
    if isinstance(value, list | tuple):
        results = [mask_json(v, keep) for v in value]
        if any(c for _, c in results):
            return [v for v, _ in results], True
        return value, False
    return value, False


def present_pop(pop: dict[str, Any], role: str, *, own_call: bool) -> dict[str, Any]:
    """The pop with every phone number shown as this viewer may see it: new dicts
    where numbers are, the rest (rooms, tickets, calls) shared with ``pop``, so treat
    it as read-only beyond its top level. Made for every frame sent, so no deep copy
    for a viewer who sees full numbers; one who does not gets every text in it
    masked too (a ticket's title may hold a number)."""
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
    if not full:
        masked, _ = mask_json(out)
        return dict(masked)
    return out


def present_people(people: list[dict[str, Any]], role: str) -> list[dict[str, Any]]:
    """Search results: never on a call, so masked for agents."""
    full = sees_full_numbers(role, own_call=False)
    out = copy.deepcopy(people)
    for person in out:
        person["phones"] = [show_number(p, full) for p in person.get("phones", [])]
    return out
