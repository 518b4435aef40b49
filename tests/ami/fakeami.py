"""A tiny scripted AMI server over a real socket, for client tests.

It speaks just enough AMI: banner, Login (checks the secret), Ping, and
whatever a test scripts in ``handlers`` (action name → function returning the
frames to send back). Every action received is recorded, per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from callcenter.ami.parser import Frame, FrameParser, encode_frame

BANNER = b"Asterisk Call Manager/9.0.0\r\n"
Reply = Callable[[Frame], list[bytes] | None]


@dataclass
class FakeSettings:
    name: str = "pbx-test"
    host: str = "127.0.0.1"
    port: int = 0
    username: str = "cc"
    secret: str = "s3cr3t-Pa55"
    community: str | None = None
    ping_interval: float = 5.0
    action_timeout: float = 1.0
    connect_timeout: float = 1.0
    reconnect_max_s: float = 0.2


@dataclass
class FakeAmi:
    username: str = "cc"
    secret: str = "s3cr3t-Pa55"
    answer_pings: bool = True
    fully_booted: bool = True
    handlers: dict[str, Reply] = field(default_factory=dict)
    received: list[list[Frame]] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    connections: int = 0
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop_listening(self) -> None:
        """Close the listening socket and every client (Asterisk gone)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self.drop_all()
        await asyncio.sleep(0)

    async def close(self) -> None:
        await self.stop_listening()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def drop_all(self) -> None:
        for w in self._writers:
            w.transport.abort()
        self._writers.clear()

    def push(self, data: bytes) -> None:
        for w in self._writers:
            w.write(data)

    def push_event(self, headers: list[tuple[str, str]] | dict[str, str]) -> None:
        self.push(encode_frame(headers))

    def actions(self, name: str) -> list[Frame]:
        return [f for conn in self.received for f in conn
                if (f.get("Action") or "").lower() == name.lower()]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.connections += 1
        self._writers.append(writer)
        frames: list[Frame] = []
        self.received.append(frames)
        parser = FrameParser(expect_banner=False)
        writer.write(BANNER)
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for frame in parser.feed(data):
                    assert isinstance(frame, Frame)
                    frames.append(frame)
                    self._answer(frame, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
            if writer in self._writers:
                self._writers.remove(writer)

    def _answer(self, frame: Frame, writer: asyncio.StreamWriter) -> None:
        action = (frame.get("Action") or "").lower()
        aid = frame.get("ActionID") or ""
        if action == "login":
            if frame.get("Username") == self.username and frame.get("Secret") == self.secret:
                writer.write(encode_frame([("Response", "Success"), ("ActionID", aid),
                                           ("Message", "Authentication accepted")]))
                if self.fully_booted:
                    writer.write(encode_frame([("Event", "FullyBooted"),
                                               ("Privilege", "system,all"),
                                               ("Status", "Fully Booted")]))
                self.connected.set()
            else:
                writer.write(encode_frame([("Response", "Error"), ("ActionID", aid),
                                           ("Message", "Authentication failed")]))
            return
        if action == "ping":
            if self.answer_pings:
                writer.write(encode_frame([("Response", "Success"), ("ActionID", aid),
                                           ("Ping", "Pong"), ("Timestamp", "1795343701.257702")]))
            return
        if action == "logoff":
            writer.write(encode_frame([("Response", "Goodbye"), ("ActionID", aid),
                                       ("Message", "Thanks for all the fish.")]))
            return
        handler = self.handlers.get(action)
        if handler is None:
            writer.write(encode_frame([("Response", "Error"), ("ActionID", aid),
                                       ("Message", "Invalid/unknown command")]))
            return
        for chunk in handler(frame) or []:
            writer.write(chunk)


def with_action_id(raw: bytes, action_id: str) -> bytes:
    """Rewrite every ActionID line of a recorded reply to ``action_id``."""
    out = []
    for line in raw.split(b"\r\n"):
        if line.startswith(b"ActionID: "):
            line = b"ActionID: " + action_id.encode()
        out.append(line)
    return b"\r\n".join(out)
