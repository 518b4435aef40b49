"""What the stand-in's dialplan has: contexts and the extensions in them, as Asterisk decides.

The stand-in does not interpret dialplan applications (``pbx.py`` models each
context's behaviour); it needs to know which targets *exist*, because that is
what Asterisk checks before a call goes anywhere (capture 10): an Originate
whose ``Context``/``Exten`` does not exist is refused at once, and a ``Local/``
channel into a missing extension is created and fails.

``Dialplan.parse`` reads ``extensions.conf`` text: ``[context]`` sections,
``exten => <pattern>,1,...`` lines (later priorities, ``same =>`` and ``hint``
lines add no extension), ``include => <context>``. ``[general]`` and
``[globals]`` are not contexts. The stand-in's own dialplan is the capture
rig's contexts plus what ``callcenter asterisk-config`` prints for the
settings it stands in for (``standin_dialplan``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callcenter.settings import AsteriskSettings, Settings

#: sections of extensions.conf that hold options, not extensions
NOT_CONTEXTS = frozenset({"general", "globals"})
_SECTION = re.compile(r"^\[([^\]]+)\]")
_EXTEN = re.compile(r"^exten\s*=>?\s*([^,]+),\s*([^,(]+)", re.I)
_INCLUDE = re.compile(r"^include\s*=>?\s*([^,|\s]+)", re.I)


def extension_matches(pattern: str, exten: str) -> bool:
    """Asterisk's own test of whether ``exten`` exists under ``pattern``
    (main/pbx.c ``_extension_match_core`` in E_MATCH mode, which Originate and
    Local channels use): ``X``/``Z``/``N`` one digit of 0-9/1-9/2-9, ``[...]`` a
    set with ranges, ``.`` one or more characters more, ``!`` zero or more,
    ``-`` ignored on both sides; a plain extension matches only itself, so
    ``s``, ``i``, ``t`` and ``h`` exist only where they are written (or under a
    pattern as wide as ``_.``, which Asterisk warns about)."""
    if not pattern.startswith("_"):
        return pattern == exten
    pat, data, i, j = pattern[1:], exten, 0, 0
    while True:
        while j < len(data) and data[j] == "-":
            j += 1
        while i < len(pat) and pat[i] == "-":
            i += 1
        if j == len(data) or i == len(pat) or pat[i] == "/":
            break
        c, d = pat[i].upper(), data[j]
        if c == "[":
            end = pat.find("]", i)
            if end < 0:
                return False  # Asterisk: "Wrong usage of [] in the extension"
            body, k, hit = pat[i + 1:end], 0, False
            while k < len(body):
                if k + 2 < len(body) and body[k + 1] == "-":
                    hit = hit or body[k] <= d <= body[k + 2]
                    k += 3
                else:
                    hit = hit or d == body[k]
                    k += 1
            if not hit:
                return False
            i = end
        elif c in "XZN":
            if not ("0" if c == "X" else "1" if c == "Z" else "2") <= d <= "9":
                return False
        elif c in ".!":
            return True  # the rest of the extension, however long
        elif d != pat[i]:
            return False
        i, j = i + 1, j + 1
    if j < len(data):
        return False  # the extension is longer than the pattern
    return i == len(pat) or pat[i] in "/!"


@dataclass
class Context:
    name: str
    #: the extensions and patterns that have a priority 1, in the order written
    extensions: list[str] = field(default_factory=list)
    includes: list[str] = field(default_factory=list)


class Dialplan:
    def __init__(self, contexts: dict[str, Context] | None = None) -> None:
        self.contexts: dict[str, Context] = dict(contexts or {})

    @classmethod
    def parse(cls, text: str) -> Dialplan:
        plan = cls()
        plan.add_text(text)
        return plan

    def add_text(self, text: str) -> Dialplan:
        """Add the contexts of an extensions.conf text; a context named again
        gets the new extensions too (as pbx_config merges a repeated section)."""
        current: Context | None = None
        for raw in text.splitlines():
            line = re.sub(r"(?<!\\);.*", "", raw).strip()
            if not line or line.startswith("#"):
                continue
            if m := _SECTION.match(line):
                name = m[1].strip()
                current = None if name in NOT_CONTEXTS else self.contexts.setdefault(name, Context(name))
                continue
            if current is None:
                continue
            if m := _EXTEN.match(line):
                pattern, priority = m[1].strip(), m[2].strip()
                if priority == "1" and pattern not in current.extensions:
                    current.extensions.append(pattern)
            elif m := _INCLUDE.match(line):
                current.includes.append(m[1].strip())
        return self

    def has_context(self, name: str) -> bool:
        return name in self.contexts

    def exists(self, context: str, exten: str) -> bool:
        """``ast_exists_extension(context, exten, 1)``: the context or one it
        includes has a priority 1 that ``exten`` matches."""
        seen: set[str] = set()
        todo = [context]
        while todo:
            name = todo.pop(0)
            ctx = self.contexts.get(name)
            if ctx is None or name in seen:
                continue
            seen.add(name)
            if any(extension_matches(p, exten) for p in ctx.extensions):
                return True
            todo.extend(ctx.includes)
        return False

    def entry(self, context: str, exten: str) -> str | None:
        """Where a channel that starts its dialplan at ``context,exten`` runs:
        ``exten`` itself, else the context's ``i`` (invalid) extension, else
        nowhere (Asterisk hangs the channel up)."""
        if self.exists(context, exten):
            return exten
        return "i" if self.exists(context, "i") else None


#: The capture rig's contexts as the stand-in models them (tests/fixtures/asterisk/
#: extensions.conf, plus ``[rig-phone]`` and ``[rig-caller]`` of captures 08-12 and the
#: demo's ``[phones]``). Only the extensions matter here; pbx.py plays what they do.
RIG_DIALPLAN = """
[hotline]
exten => s,1,NoOp(hotline: ${CALLERID(all)})
exten => _X.,1,Goto(hotline,s,1)

[fastagi]
exten => s,1,NoOp(fastagi: ${CALLERID(all)})
exten => _X.,1,Goto(fastagi,s,1)

[caller-sim]
exten => s,1,NoOp(caller-sim)
exten => vm,1,NoOp(caller-sim voicemail depositor)
exten => wait,1,Answer()

[voicemail-deposit]
exten => _X.,1,VoiceMail(${EXTEN}@default,s)

[voicemail-main]
exten => _X.,1,VoiceMailMain(${EXTEN}@default,s)

[queue-entry]
exten => s,1,NoOp(queue entry ${CALLERID(all)})

[agents]
exten => 1001,1,NoOp(agent 1001 ringing)

[dial-test]
exten => s,1,Answer()

[sip-unused]
exten => _X.,1,Hangup()

; captures 08-12: the rig's phones (AstDB rigphone) and its scripted caller (SIM_SCRIPT)
[rig-phone]
exten => _X.,1,NoOp(rig phone ${EXTEN})

[rig-caller]
exten => s,1,NoOp(rig caller ${SIM_SCRIPT})

; the demo's phones: Local/<number>@phones rings the stand-in's Phone of that number
[phones]
exten => _X!,1,NoOp(phone ${EXTEN})
"""


def printed_dialplan(settings: Settings | None = None, pbx: AsteriskSettings | None = None) -> str:
    """The extensions.conf ``callcenter asterisk-config`` prints for ``pbx`` of
    ``settings`` (the defaults when not given)."""
    from callcenter.asterisk_config import extensions_conf
    from callcenter.settings import AsteriskSettings, settings_from_mapping

    settings = settings or settings_from_mapping({})
    pbx = pbx or (settings.asterisk[0] if settings.asterisk else AsteriskSettings())
    return extensions_conf(settings, pbx)


def standin_dialplan(settings: Settings | None = None, pbx: AsteriskSettings | None = None) -> Dialplan:
    """The rig's contexts and the printed ones: what the stand-in has by default."""
    return Dialplan.parse(RIG_DIALPLAN).add_text(printed_dialplan(settings, pbx))
