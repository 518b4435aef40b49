"""AGI commands on a simulated channel, and the AsyncAGI transport.

``AgiExecutor.execute(line)`` runs one AGI command line and returns the
reply line res_agi would send (without the newline). FastAGI and AsyncAGI
share it; AsyncAGI wraps replies in ``AsyncAGIExec`` events."""

from __future__ import annotations

import asyncio
import itertools
import shlex
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from callcenter.simulator import events as ev
from callcenter.simulator.pbx import Gone
from callcenter.simulator.timing import standin_task
from callcenter.simulator.voicemail import write_silence

if TYPE_CHECKING:
    from callcenter.simulator.pbx import Call, Pbx

DEAD = "511 Command Not Permitted on a dead channel or intercepted by a dead channel"
_thread_ids = itertools.count(140079559440064, 512000)


def agi_env(pbx: Pbx, call: Call, *, request: str, network_script: str | None = None) -> list[tuple[str, str]]:
    ch = call.app
    env: list[tuple[str, str]] = []
    if network_script is not None:
        env += [("agi_network", "yes"), ("agi_network_script", network_script)]
    env += [
        ("agi_request", request),
        ("agi_channel", ch.name),
        ("agi_language", ch.language),
        ("agi_type", ch.name.partition("/")[0]),
        ("agi_uniqueid", ch.uniqueid),
        ("agi_version", "20.20.1"),
        ("agi_callerid", ch.cid_num or "unknown"),
        ("agi_calleridname", ch.cid_name or "unknown"),
        ("agi_callingpres", "0"),
        ("agi_callingani2", "0"),
        ("agi_callington", "0"),
        ("agi_callingtns", "0"),
        ("agi_dnid", ch.variables.get("DNID", "unknown")),
        ("agi_rdnis", "unknown"),
        ("agi_context", ch.context),
        ("agi_extension", ch.exten),
        ("agi_priority", str(ch.priority)),
        ("agi_enhanced", "0.0"),
        ("agi_accountcode", ch.accountcode),
        ("agi_threadid", str(next(_thread_ids))),
    ]
    return env


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError:
        return line.split()


class AgiExecutor:
    def __init__(self, pbx: Pbx, call: Call) -> None:
        self.pbx = pbx
        self.call = call
        self.hung_up_by_agi = False

    async def execute(self, line: str) -> str:
        """One command → one reply line. Raises nothing: a hangup mid-command gives -1."""
        if self.call.gone.is_set() or self.call.app.dead or self.hung_up_by_agi:
            return DEAD
        words = _split(line.strip())
        if not words:
            return "510 Invalid or unknown command"
        upper = [w.upper() for w in words]
        if upper[0] in ("STREAM", "CONTROL", "GET", "SAY", "RECORD") and upper[:2] != ["GET", "VARIABLE"] \
                and upper[:2] != ["GET", "FULL"]:
            self.pbx.media(self.call)
        try:
            return await self._dispatch(upper, words)
        except Gone:
            return "200 result=-1"

    async def _dispatch(self, up: list[str], words: list[str]) -> str:
        pbx, call, ch = self.pbx, self.call, self.call.app
        head = " ".join(up[:2])
        if up[0] == "ANSWER":
            if ch.state != 6:
                pbx.set_state(ch, 6)
            return "200 result=0"
        if up[0] == "HANGUP":
            self.hung_up_by_agi = True
            pbx.emit(ev.soft_hangup_request(ch, 32))
            return "200 result=1"
        if up[0] == "NOOP":
            return "200 result=0"
        if up[0] == "VERBOSE":
            return "200 result=1"
        if head == "GET VARIABLE" or head == "GET FULL":
            name = words[2] if len(words) > 2 else ""
            value = pbx.getvar(ch, name)
            return f"200 result=1 ({value})" if value is not None else "200 result=0"
        if head == "SET VARIABLE":
            if len(words) < 4:
                return "520 Invalid command syntax.  Proper usage not available."
            pbx.setvar(ch, words[2], words[3])
            return "200 result=1"
        if head in ("STREAM FILE", "CONTROL STREAM"):
            args = words[2:] if head == "STREAM FILE" else words[3:]
            escape = args[1] if len(args) > 1 else ""
            digit, endpos = await self._play(escape)
            pbx.setvar(ch, "PLAYBACKSTATUS", "SUCCESS")
            return f"200 result={ord(digit) if digit else 0} endpos={endpos}"
        if head == "GET DATA":
            args = words[2:]
            timeout = float(args[1]) / 1000 if len(args) > 1 and args[1] else 5.0
            max_digits = int(args[2]) if len(args) > 2 and args[2] else 1024
            first, _ = await self._play("0123456789*#")
            digits = first or ""
            while len(digits) < max_digits:
                if digits.endswith("#"):
                    digits = digits[:-1]
                    break
                d = await pbx.next_digit(call, timeout)
                if d is None:
                    return f"200 result={digits} (timeout)"
                digits += d
            if digits.endswith("#"):
                digits = digits[:-1]
            return f"200 result={digits}"
        if head == "WAIT FOR":
            timeout_ms = float(words[3]) if len(words) > 3 else -1
            d = await pbx.next_digit(call, None if timeout_ms < 0 else timeout_ms / 1000)
            return f"200 result={ord(d) if d else 0}"
        if head in ("SAY NUMBER", "SAY DIGITS", "SAY ALPHA", "SAY PHONETIC", "SAY DATE", "SAY TIME",
                    "SAY DATETIME"):
            escape = words[3] if len(words) > 3 else ""
            digit, _ = await self._play(escape, seconds=0.3 * max(1, len(words[2]) if len(words) > 2 else 1))
            return f"200 result={ord(digit) if digit else 0}"
        if head == "RECORD FILE":
            return await self._record(words[2:])
        if up[0] == "EXEC":
            app = words[1] if len(words) > 1 else ""
            data = " ".join(words[2:])
            known = {"dial", "queue", "voicemail", "playback", "background", "wait", "noop", "set",
                     "answer", "hangup", "agi", "progress", "ringing", "musiconhold", "sayunixtime"}
            if app.lower() not in known:
                return "200 result=-2"
            if app.lower() == "set":
                name, _, value = data.partition("=")
                pbx.setvar(ch, name, value)
                return "200 result=0"
            if app.lower() == "hangup":
                self.hung_up_by_agi = True
                return "200 result=-1"
            result = await pbx.run_application(call, app, data)
            return f"200 result={result}"
        if head in ("SET MUSIC", "SET CONTEXT", "SET EXTENSION", "SET PRIORITY", "SET CALLERID",
                    "SET AUTOHANGUP", "DATABASE PUT", "DATABASE DEL"):
            return "200 result=0" if up[1] == "MUSIC" else "200 result=1"
        if head == "CHANNEL STATUS":
            return f"200 result={ch.state}"
        if head == "ASYNCAGI BREAK":
            return "200 result=0"
        return "510 Invalid or unknown command"

    async def _play(self, escape: str, seconds: float | None = None) -> tuple[str | None, int]:
        """Play a prompt; a digit among ``escape`` stops it. Returns (digit, endpos)."""
        length = self.pbx.prompt_seconds if seconds is None else seconds
        started = self.pbx.clock.monotonic()
        deadline = started + length
        while True:
            left = deadline - self.pbx.clock.monotonic()
            if left <= 0:
                return None, 11234
            d = await self.pbx.next_digit(self.call, left)
            if d is None:
                return None, 11234
            if d in escape:
                played = self.pbx.clock.monotonic() - started
                return d, int(played * 8000)

    async def _record(self, args: list[str]) -> str:
        if len(args) < 4:
            return "520 Invalid command syntax.  Proper usage not available."
        path, fmt, escape, timeout_ms = args[0], args[1], args[2], float(args[3])
        call = self.call
        target = self._record_path(Path(f"{path}.{fmt}"))
        speech = call.app.speech
        limit = timeout_ms / 1000 if timeout_ms > 0 else 3600.0
        seconds = min(limit, speech.seconds if speech else limit)
        started = self.pbx.clock.monotonic()
        result = "200 result=1 (timeout)"
        try:
            d = await self.pbx.next_digit(call, limit)
            if d is not None and d in escape:
                result = f"200 result={ord(d)} (dtmf)"
        except Gone:
            result = "200 result=-1 (hangup)"
        elapsed = self.pbx.clock.monotonic() - started
        seconds = min(seconds, elapsed) if elapsed > 0 else seconds
        source = Path(speech.wav) if speech and speech.wav else None
        await asyncio.to_thread(_write_recording, target, source, max(seconds, 0.1))
        endpos = int(max(seconds, 0.1) * 8000)
        return f"{result} endpos={endpos}"

    def _record_path(self, path: Path) -> Path:
        root = self.pbx.record_root
        if root is None:
            return path
        if path.is_absolute():
            return root / path.relative_to(path.anchor)
        return root / path


def _write_recording(target: Path, source: Path | None, seconds: float) -> None:
    """The caller's scripted audio if it has some, else silence of the recorded length."""
    if source is not None and source.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    else:
        write_silence(target, seconds)


class AsyncAgiSession:
    """``AGI(agi:async)``: commands arrive through the AMI ``AGI`` action."""

    def __init__(self, pbx: Pbx, call: Call) -> None:
        self.pbx = pbx
        self.call = call
        self.executor = AgiExecutor(pbx, call)
        self.commands: asyncio.Queue[tuple[str, str | None]] = asyncio.Queue()
        self.running = True
        self.timed_out = False
        """``TIMEOUT(absolute)`` ran out while waiting for a command: the dialplan's ``T``."""

    def queue_command(self, command: str, command_id: str | None) -> bool:
        if not self.running:
            return False
        self.commands.put_nowait((command, command_id))
        return True

    async def run(self) -> None:
        pbx, call, ch = self.pbx, self.call, self.call.app
        env = "".join(f"{k}: {v}\n" for k, v in agi_env(pbx, call, request="async")) + "\n"
        pbx.emit(ev.async_agi_start(ch, env))
        if call.origin_reply:
            call.origin_reply()

        pending: list[tuple[str, str, str, str | None]] = []

        def finish(cid: str, command: str, reply: str, command_id: str | None) -> None:
            code = reply.split(" ", 1)[0]
            pbx.emit(ev.agi_exec_end(ch, cid, command, int(code) if code.isdigit() else 200,
                                     "Success" if code == "200" else reply.partition(" ")[2]))
            pbx.emit(ev.async_agi_exec(ch, reply + "\n", command_id))

        async def on_gone() -> None:
            # after the interrupted application cleaned up: its result, then the end of AGI
            self.running = False
            for item in pending:
                finish(*item)
            pbx.emit(ev.async_agi_end(ch))

        call.cleanups.append(on_gone)
        try:
            while True:
                getter = standin_task(self.commands.get())
                waiter = standin_task(call.gone.wait())
                waits = {getter, waiter}
                if ch.hangup_at is not None:  # TIMEOUT(absolute) from the printed hotline
                    waits.add(standin_task(pbx.clock.sleep(max(0.0, ch.hangup_at - pbx.clock.monotonic()))))
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for t in waits - {getter}:
                        t.cancel()
                if not getter.done() and not call.gone.is_set() and ch.hangup_at is not None:
                    getter.cancel()
                    ch.hangup_at = None  # the T extension clears it
                    self.timed_out = True
                    break
                if not getter.done():
                    getter.cancel()
                    pbx.check(call)
                    raise Gone
                command, command_id = getter.result()
                cid = command_id or str(next(_thread_ids) % 2**31)
                pbx.emit(ev.agi_exec_start(ch, cid, command))
                reply = await self.executor.execute(command)
                if call.gone.is_set() and call.redirect_to is None:
                    pending.append((cid, command, reply, command_id))
                    raise Gone
                finish(cid, command, reply, command_id)
                if command.strip().upper() == "ASYNCAGI BREAK":
                    break
                if call.gone.is_set():
                    pbx.check(call)
                    raise Gone
                if self.executor.hung_up_by_agi:
                    break
        finally:
            self.running = False
        call.cleanups.remove(on_gone)
        pbx.emit(ev.async_agi_end(ch))
        status = "HANGUP" if self.timed_out else "SUCCESS"
        ch.variables["AGISTATUS"] = status
        pbx.emit(ev.varset(ch, "AGISTATUS", status))
