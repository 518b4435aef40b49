"""A scripted AGI channel for engine unit tests: replies to each command from a
list of keys the caller presses, and records what the engine asked."""

from __future__ import annotations

from collections import deque

from ivr.agi import AgiChannel, AgiResult, parse_agi_result


class ScriptedChannel(AgiChannel):
    """``keys``: one entry per key-collecting command (STREAM FILE with escape
    digits, WAIT FOR DIGIT, GET DATA): a key string, "" for silence, or
    "hangup". Other commands succeed; EXEC can be made to fail."""

    def __init__(self, keys: list[str], *, caller: str = "13812345678",
                 fail_exec: set[str] | None = None, missing: set[str] | None = None,
                 linkedid: str | None = None, typeahead: str = "") -> None:
        self.env = {"agi_uniqueid": "1700000000.1", "agi_callerid": caller,
                    "agi_calleridname": "测试", "agi_channel": "PJSIP/trunk-1"}
        self.keys = deque(keys)
        self.commands: list[str] = []
        self.fail_exec = fail_exec or set()
        self.missing = missing or set()  # sound files Asterisk cannot find
        self.linkedid = linkedid
        self.closed = False
        self.gone = False
        self.typeahead = typeahead  # a key pressed during the greeting (not from ``keys``)

    def _next_key(self) -> str:
        if not self.keys:
            return ""
        return self.keys.popleft()

    async def send_command(self, command: str) -> AgiResult:
        self.commands.append(command)
        if self.gone:
            return parse_agi_result("511 Command Not Permitted on a dead channel")
        verb = command.split(" ", 2)
        name = " ".join(verb[:2])
        if name == "STREAM FILE" and verb[2].split(" ")[0] in self.missing:
            return parse_agi_result("200 result=-1 endpos=0")
        if name == "GET VARIABLE" and verb[2] == "CHANNEL(linkedid)" and self.linkedid:
            return parse_agi_result(f"200 result=1 ({self.linkedid})")
        if name == "STREAM FILE" and verb[2].split(" ")[0] in ("welcome", "welcome-owner"):
            key, self.typeahead = self.typeahead, ""
            return parse_agi_result(f"200 result={ord(key) if key else 0} endpos=100")
        if name in ("STREAM FILE", "WAIT FOR", "GET DATA"):
            collects = name != "STREAM FILE" or not command.endswith('""')
            if collects:
                key = self._next_key()
                if key == "hangup":
                    self.gone = True
                    return parse_agi_result("200 result=-1")
                if name == "GET DATA":
                    return parse_agi_result(f"200 result={key}" if key else "200 result= (timeout)")
                return parse_agi_result(f"200 result={ord(key[0]) if key else 0}")
        if verb[0] == "EXEC" and verb[1] in self.fail_exec:
            raise RuntimeError(f"{verb[1]} failed")
        return parse_agi_result("200 result=0")

    async def close(self) -> None:
        self.closed = True

    def played(self) -> list[str]:
        return [c.split(" ")[2] for c in self.commands if c.startswith("STREAM FILE")]

    def execs(self) -> list[str]:
        return [c for c in self.commands if c.startswith("EXEC")]
