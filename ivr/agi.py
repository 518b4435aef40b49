"""The AGI command language, shared by FastAGI and AsyncAGI.

Both transports carry the same commands (``STREAM FILE welcome "12"``) and the
same replies (``200 result=49 endpos=1234``). A transport only has to move one
command line out and one reply line back: everything else lives here.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from urllib.parse import unquote

from ivr.errors import AgiCommandError, CallerHungUp

log = logging.getLogger(__name__)

#: applications that answer ``result=-1`` when the *bridged* party hangs up, the caller
#: still being on the line (capture 08): for them -1 is not a hang-up of the caller
BRIDGING_APPS = frozenset({"dial", "queue"})

_RESULT = re.compile(r"^(?P<code>\d{3})[ -](?:result=(?P<result>-?\d+|\S*))?\s*(?:\((?P<data>.*)\))?\s*(?P<rest>.*)$")


@dataclass(frozen=True, slots=True)
class AgiResult:
    code: int
    result: str
    data: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    raw: str = ""

    @property
    def value(self) -> int:
        try:
            return int(self.result)
        except ValueError:
            return 0

    @property
    def digit(self) -> str | None:
        """For STREAM FILE / WAIT FOR DIGIT: the key pressed, or None."""
        v = self.value
        return chr(v) if v > 0 else None


def parse_agi_env(lines: list[str]) -> dict[str, str]:
    """``agi_callerid: 138...`` lines into a dict; a blank line ends the header."""
    env: dict[str, str] = {}
    for line in lines:
        if not line.strip():
            break
        key, _, value = line.partition(":")
        env[key.strip()] = value[1:] if value.startswith(" ") else value
    return env


def parse_asyncagi_env(encoded: str) -> dict[str, str]:
    """AsyncAGIStart's ``Env`` is the same header, URL-encoded."""
    return parse_agi_env(unquote(encoded).split("\n"))


class HangupResult(CallerHungUp):
    """A ``200 result=-1`` reply: the caller hung up, except after an application
    in ``BRIDGING_APPS``, where it can mean that the other party did."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


def parse_agi_result(line: str) -> AgiResult:
    """Parse one reply line. 511 and ``HANGUP`` mean the caller is gone."""
    line = line.strip()
    if line == "HANGUP" or line.startswith("511"):
        raise CallerHungUp(line)
    m = _RESULT.match(line)
    if not m:
        raise AgiCommandError(f"unparseable AGI reply {line!r}", reply=line)
    code = int(m.group("code"))
    if code != 200:
        raise AgiCommandError(f"AGI error {line!r}", reply=line)
    extra: dict[str, str] = {}
    for part in (m.group("rest") or "").split():
        k, sep, v = part.partition("=")
        if sep:
            extra[k] = v
    result = m.group("result") or ""
    if result == "-1":
        # -1 is how Asterisk says the channel hung up during the command.
        raise HangupResult(line)
    return AgiResult(code=code, result=result, data=m.group("data"), extra=extra, raw=line)


def quote_arg(value: str) -> str:
    """Quote one argument for an AGI command line."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return f'"{escaped}"'


class AgiChannel(ABC):
    """A call driven through AGI. Transports implement ``send_command`` only.

    Every method raises ``CallerHungUp`` once the caller is gone, so the IVR
    engine can end the session cleanly at any step.
    """

    env: dict[str, str]
    #: the community of the Asterisk that handed over the call, when its link has one
    #: (AsyncAGI over a community's AMI link; FastAGI cannot tell)
    link_community: str | None = None

    @property
    def uniqueid(self) -> str:
        return self.env.get("agi_uniqueid", "")

    @property
    def caller_number(self) -> str:
        return self.env.get("agi_callerid", "")

    @property
    def caller_name(self) -> str:
        return self.env.get("agi_calleridname", "")

    @property
    def dnid(self) -> str:
        return self.env.get("agi_dnid", "")

    @abstractmethod
    async def send_command(self, command: str) -> AgiResult:
        """Send one AGI command line and return its parsed reply."""

    async def close(self) -> None:
        """Release the transport (FastAGI: close the socket). Idempotent."""
        return None

    async def answer(self) -> None:
        await self.send_command("ANSWER")

    async def stream_file(self, name: str, escape_digits: str = "") -> str | None:
        """Play a prompt; return the key that interrupted it, if any.

        Asterisk answers a missing sound file with ``result=-1 endpos=0``, the
        same code as a hang-up: that is logged and skipped (a caller who really
        left makes the next command fail with 511)."""
        try:
            res = await self.send_command(f"STREAM FILE {name} {quote_arg(escape_digits)}")
        except CallerHungUp as exc:
            if "endpos=0" in str(exc):
                log.warning("prompt %r could not be played (missing sound file?)", name)
                return None
            raise
        return res.digit

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> str:
        """Play ``prompt`` and collect up to ``max_digits``; '' on timeout."""
        res = await self.send_command(f"GET DATA {prompt} {timeout_ms} {max_digits}")
        return res.result

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        res = await self.send_command(f"WAIT FOR DIGIT {timeout_ms}")
        return res.digit

    async def say_number(self, number: int, escape_digits: str = "") -> str | None:
        res = await self.send_command(f"SAY NUMBER {number} {quote_arg(escape_digits)}")
        return res.digit

    async def say_digits(self, digits: str, escape_digits: str = "") -> str | None:
        res = await self.send_command(f"SAY DIGITS {digits} {quote_arg(escape_digits)}")
        return res.digit

    async def get_variable(self, name: str) -> str | None:
        res = await self.send_command(f"GET VARIABLE {name}")
        return res.data if res.value == 1 else None

    async def set_variable(self, name: str, value: str) -> None:
        await self.send_command(f"SET VARIABLE {name} {quote_arg(value)}")

    async def exec(self, application: str, args: str = "") -> AgiResult:
        """Run a dialplan application on the channel.

        ``Dial`` and ``Queue`` answer ``200 result=-1`` when the party they bridged
        hangs up first, though the caller is still there (capture 08): then the
        channel is asked (``CHANNEL STATUS``) and the result is returned, -1 and
        all, for the caller to read ``DIALSTATUS``/``QUEUESTATUS``. A caller who
        really left shows as a ``HANGUP`` line / ``511`` (FastAGI) or a channel
        gone from AsyncAGI, and raises ``CallerHungUp`` as for any command."""
        command = f"EXEC {application} {quote_arg(args)}"
        if application.lower() not in BRIDGING_APPS:
            return await self.send_command(command)
        try:
            return await self.send_command(command)
        except HangupResult as exc:
            reply = exc.reply
        await self.channel_status()
        return AgiResult(code=200, result="-1", raw=reply)

    async def channel_status(self) -> int:
        """``CHANNEL STATUS``: Asterisk's channel state (6 = up); ``CallerHungUp``
        if the caller is gone."""
        res = await self.send_command("CHANNEL STATUS")
        return res.value

    async def record_file(self, path: str, fmt: str = "wav", escape_digits: str = "#",
                          timeout_ms: int = 120000, beep: bool = True,
                          silence_s: int = 5) -> AgiResult:
        beep_arg = " BEEP" if beep else ""
        return await self.send_command(
            f"RECORD FILE {path} {fmt} {quote_arg(escape_digits)} {timeout_ms}{beep_arg} s={silence_s}"
        )

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.send_command(f"VERBOSE {quote_arg(message)} {level}")

    async def hangup(self) -> None:
        try:
            await self.send_command("HANGUP")
        except CallerHungUp:
            pass
