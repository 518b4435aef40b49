"""FastAGI: Asterisk connects (``AGI(agi://host:4573/hotline)``), this server answers.

Replaces panoramisk 1.4's FastAGI handler, which spins at full CPU when the
peer closes before the blank line and registers handlers with the
``asyncio.coroutine`` removed in 3.11. Here every read has a timeout, a peer
that closes or sends garbage is dropped, a line over ``MAX_LINE`` ends that
connection (with one warning) and no other, and the socket is always closed
when the handler returns: real Asterisk keeps the channel waiting until then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

from ivr.agi import AgiChannel, AgiResult, parse_agi_env, parse_agi_result
from ivr.errors import AgiCommandError, CallerHungUp

log = logging.getLogger(__name__)

HEADER_TIMEOUT_S = 10.0
MAX_HEADER_LINES = 200
MAX_LINE = 8192
# Asterisk opens one connection per call: a burst of calls (a building loses its
# water at 7 a.m.) must queue in the kernel, not be dropped. asyncio's default of
# 100 overflowed under 1,000 calls at once and the dropped connects came back a
# second later, all together (bench/ivr_concurrency.py). The kernel caps it at
# net.core.somaxconn.
LISTEN_BACKLOG = 1024


class FastAgiChannel(AgiChannel):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 env: dict[str, str], *, command_timeout_s: float = 120.0) -> None:
        self.env = env
        self._reader = reader
        self._writer = writer
        self._timeout = command_timeout_s
        self.hung_up = False
        self.closed = False
        self.broken = False  # the stream is out of step: no command may follow

    @property
    def script(self) -> str:
        """The script name of ``agi://host:4573/hotline?x=1``: ``hotline``."""
        return self.env.get("agi_network_script", "").split("?", 1)[0].strip("/")

    async def _readline(self) -> str:
        try:
            async with asyncio.timeout(self._timeout):
                raw = await self._reader.readline()
        except (ValueError, asyncio.LimitOverrunError):
            # A line longer than the reader's limit: the stream is out of step from
            # here, so this call's link is over (the caller goes on in the dialplan
            # after AGI(), to its fallback). Logged once, here, without a traceback.
            self.broken = True
            log.warning("FastAGI: a line over %d bytes from Asterisk on %s; closing that "
                        "connection", MAX_LINE, self.env.get("agi_channel", "?"))
            raise CallerHungUp(f"FastAGI line over {MAX_LINE} bytes") from None
        if not raw:
            raise CallerHungUp("FastAGI peer closed the connection")
        return raw.decode("utf-8", errors="replace").rstrip("\r\n")

    async def send_command(self, command: str) -> AgiResult:
        if self.closed or self.broken:
            raise CallerHungUp("FastAGI session closed")
        if self.hung_up:
            raise CallerHungUp("the caller hung up (HANGUP from Asterisk)")
        self._writer.write(command.replace("\n", " ").encode("utf-8") + b"\n")
        try:
            await self._writer.drain()
            line = await self._readline()
            if line == "HANGUP":
                # Asterisk's out-of-band notice that the caller left. The reply to
                # this command still follows: read it so the stream stays in step.
                self.hung_up = True
                with contextlib.suppress(CallerHungUp, TimeoutError, ConnectionError):
                    async with asyncio.timeout(min(self._timeout, 2.0)):
                        await self._reader.readline()
                raise CallerHungUp(f"the caller hung up during {command.split(' ', 2)[0]}")
            if line.startswith("520-"):
                usage = [line]
                while not line.startswith("520 "):
                    line = await self._readline()
                    usage.append(line)
                raise AgiCommandError(f"invalid AGI command {command!r}", reply="\n".join(usage))
        except (ConnectionError, TimeoutError) as exc:
            raise CallerHungUp(f"FastAGI link lost: {exc!r}") from None
        return parse_agi_result(line)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


Handler = Callable[[FastAgiChannel], Awaitable[None]]


class ScriptRouter:
    """A handler that picks another by script name: ``agi://host/hotline`` runs
    ``routes["hotline"]``. An unknown script hears an apology and is hung up
    (never silence); the server closes the socket either way."""

    def __init__(self, routes: Mapping[str, Handler], *, default: Handler | None = None,
                 sorry_prompt: str = "sorry-system") -> None:
        self.routes = dict(routes)
        self.default = default
        self.sorry_prompt = sorry_prompt

    async def __call__(self, channel: FastAgiChannel) -> None:
        handler = self.routes.get(channel.script, self.default)
        if handler is None:
            log.warning("FastAGI: no handler for script %r; apologising and hanging up",
                        channel.script)
            await channel.stream_file(self.sorry_prompt)
            await channel.hangup()
            return
        await handler(channel)


async def read_header(reader: asyncio.StreamReader, timeout_s: float = HEADER_TIMEOUT_S
                      ) -> dict[str, str] | None:
    """The ``agi_*`` lines up to the blank line, or None for a peer that closes,
    stalls or sends something else."""
    lines: list[str] = []
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                raw = await reader.readline()
                if not raw:
                    return None
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if not line:
                    break
                if not line.startswith("agi_") or ":" not in line or len(lines) >= MAX_HEADER_LINES:
                    return None
                lines.append(line)
    except (TimeoutError, ValueError, ConnectionError):
        return None
    env = parse_agi_env(lines)
    return env if "agi_channel" in env or "agi_uniqueid" in env else None


class FastAgiServer:
    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 4573, *,
                 command_timeout_s: float = 120.0, header_timeout_s: float = HEADER_TIMEOUT_S) -> None:
        self.handler = handler
        self.host = host
        self._port = port
        self.command_timeout_s = command_timeout_s
        self.header_timeout_s = header_timeout_s
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def active_sessions(self) -> int:
        return len(self._sessions)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self._port,
                                                  limit=MAX_LINE, backlog=LISTEN_BACKLOG)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._sessions):
            task.cancel()
        if self._sessions:
            await asyncio.gather(*self._sessions, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._sessions.add(task)
        channel: FastAgiChannel | None = None
        try:
            env = await read_header(reader, self.header_timeout_s)
            if env is None:
                log.warning("FastAGI: dropped a connection without a valid agi_* header")
                return
            channel = FastAgiChannel(reader, writer, env, command_timeout_s=self.command_timeout_s)
            await self.handler(channel)
        except CallerHungUp:
            pass
        except asyncio.CancelledError:
            # stop() with calls up: the session ends here. Not re-raised: Python 3.11's
            # start_server callback would log the cancelled task as an error.
            pass
        except Exception:
            log.exception("FastAGI session failed")
        finally:
            if channel is not None:
                await channel.close()
            else:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            if task is not None:
                self._sessions.discard(task)
