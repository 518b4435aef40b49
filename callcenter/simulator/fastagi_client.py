"""Asterisk's side of ``AGI(agi://host:port/script)``.

Connect, send the ``agi_*`` header and a blank line, then answer each
command line. When the caller hangs up, send a ``HANGUP`` line and keep the
socket open until the server closes it (as Asterisk 20 does)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from callcenter.simulator import events as ev
from callcenter.simulator.asyncagi import DEAD, AgiExecutor, agi_env
from callcenter.simulator.pbx import Gone
from callcenter.simulator.timing import standin_task

if TYPE_CHECKING:
    from callcenter.simulator.pbx import Call, Pbx

log = logging.getLogger(__name__)


class FastAgiSession:
    def __init__(self, pbx: Pbx, call: Call, url: str, *, connect_timeout: float = 5.0) -> None:
        self.pbx = pbx
        self.call = call
        self.url = url
        self.connect_timeout = connect_timeout
        self.executor = AgiExecutor(pbx, call)
        #: every line exchanged: ("<<<", line) sent by Asterisk, (">>>", line) by the server
        self.transcript: list[tuple[str, str]] = []
        self._command_ids = itertools.count(1412420000, 7919)

    async def run(self) -> None:
        pbx, ch = self.pbx, self.call.app
        parts = urlsplit(self.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 4573
        script = parts.path.lstrip("/")
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), self.connect_timeout)
        except (OSError, TimeoutError):
            log.warning("FastAGI server %s unreachable", self.url)
            pbx.setvar(ch, "AGISTATUS", "FAILURE")
            return
        try:
            await self._session(reader, writer, script)
        except Gone:
            # the caller hung up: the teardown's cleanup says HANGUP and closes when the server does
            raise
        except BaseException:
            writer.close()
            raise
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()

    async def _send(self, writer: asyncio.StreamWriter, line: str) -> None:
        self.transcript.append(("<<<", line))
        writer.write(line.encode("utf-8") + b"\n")
        with contextlib.suppress(ConnectionError):
            await writer.drain()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, script: str) -> None:
        pbx, call, ch = self.pbx, self.call, self.call.app
        for key, value in agi_env(pbx, call, request=self.url, network_script=script):
            await self._send(writer, f"{key}: {value}")
        await self._send(writer, "")
        hangup_sent = False

        async def caller_gone() -> None:
            # Called in teardown order after the party hung up: tell the server, wait for it to close.
            nonlocal hangup_sent
            if not hangup_sent:
                hangup_sent = True
                await self._send(writer, "HANGUP")
            await self._drain_until_closed(reader, writer)
            writer.close()

        call.cleanups.append(caller_gone)
        while True:
            line_task = standin_task(reader.readline())
            gone_task = standin_task(call.gone.wait())
            try:
                await asyncio.wait({line_task, gone_task}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                gone_task.cancel()
            if not line_task.done():
                line_task.cancel()
                pbx.check(call)
                raise Gone
            raw = line_task.result()
            if not raw:  # server closed: the dialplan goes on
                break
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            self.transcript.append((">>>", line))
            if not line.strip():
                continue
            cid = str(next(self._command_ids))
            pbx.emit(ev.agi_exec_start(ch, cid, line))
            reply = await self.executor.execute(line)
            code = reply.split(" ", 1)[0]
            pbx.emit(ev.agi_exec_end(ch, cid, line, int(code) if code.isdigit() else 200,
                                     "Success" if code == "200" else reply.partition(" ")[2]))
            await self._send(writer, reply)
            if self.executor.hung_up_by_agi and reply != DEAD and line.strip().upper().startswith("HANGUP"):
                # Asterisk: the soft hangup lands at once, the HANGUP line follows,
                # and the channel stays until the server closes the socket.
                pbx.setvar(ch, "AGISTATUS", "HANGUP")
                hangup_sent = True
                await self._send(writer, "HANGUP")
                call.cleanups.remove(caller_gone)
                await self._drain_until_closed(reader, writer)
                self._fastagi_hangup()
                return
            if call.gone.is_set():
                pbx.check(call)
                raise Gone
        call.cleanups.remove(caller_gone)
        ch.variables["AGISTATUS"] = "SUCCESS"
        pbx.emit(ev.varset(ch, "AGISTATUS", "SUCCESS"))

    async def _drain_until_closed(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer whatever the server still sends with 511 until it closes the socket."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.pbx.fastagi_close_timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return
            try:
                raw = await asyncio.wait_for(reader.readline(), left)
            except (TimeoutError, ConnectionError):
                return
            if not raw:
                return
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            self.transcript.append((">>>", line))
            if line.strip():
                await self._send(writer, DEAD)

    def _fastagi_hangup(self) -> None:
        """03_fastagi_ami's order after the server closed the socket of a HANGUP'd channel."""
        pbx, call = self.pbx, self.call
        one, two = call.app, call.party
        call.ended = True
        pbx.emit(ev.soft_hangup_request(one, 16))
        if call.local_pair:
            pbx.emit(ev.hangup_request(two, 0))
        pbx._cdr(one)
        if call.local_pair:
            pbx.playback_done(two)
            pbx.emit(ev.soft_hangup_request(two, 16))
            pbx.emit(ev.hangup(two, 0))
            pbx._destroy(two)
            pbx._cdr(two)
        pbx.emit(ev.hangup(one, 0))
        pbx._destroy(one)
