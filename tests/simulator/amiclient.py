"""A minimal AMI client for the stand-in's tests: real socket, FrameParser."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

from callcenter.ami.parser import Banner, Frame, FrameParser, encode_frame

TIMEOUT = 5.0


class MiniAmi:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, chunk: int = 65536) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = FrameParser()
        self.chunk = chunk
        self.banner: str | None = None
        self.frames: list[Frame] = []  # everything received, in order
        self._pos = 0
        self._ids = itertools.count(1)
        self.closed = False

    @classmethod
    async def connect(cls, port: int, *, chunk: int = 65536) -> MiniAmi:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)
        return cls(reader, writer, chunk=chunk)

    async def _read_more(self, within: float) -> None:
        data = await asyncio.wait_for(self.reader.read(self.chunk), within)
        if not data:
            self.closed = True
            raise ConnectionError("closed by peer")
        for item in self.parser.feed(data):
            if isinstance(item, Banner):
                self.banner = item.text
            else:
                self.frames.append(item)

    async def quiet(self, seconds: float = 0.5) -> None:
        """Read whatever arrives for ``seconds`` (what a stand-in sends after the last wait)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            try:
                await self._read_more(max(0.01, end - loop.time()))
            except TimeoutError:
                break

    async def wait_for(self, pred: Callable[[Frame], bool], within: float = TIMEOUT) -> Frame:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            while self._pos < len(self.frames):
                f = self.frames[self._pos]
                self._pos += 1
                if pred(f):
                    return f
            await self._read_more(max(0.01, deadline - loop.time()))

    async def wait_event(self, name: str, within: float = TIMEOUT, **match: str) -> Frame:
        return await self.wait_for(
            lambda f: f.event == name and all(f.get(k) == v for k, v in match.items()), within)

    def send(self, action: str, *headers: tuple[str, str], action_id: str | None = None) -> str:
        aid = action_id or f"t{next(self._ids)}"
        self.writer.write(encode_frame([("Action", action), ("ActionID", aid), *headers]))
        return aid

    async def action(self, action: str, *headers: tuple[str, str], within: float = TIMEOUT) -> Frame:
        aid = self.send(action, *headers)
        return await self.wait_for(lambda f: f.event is None and f.get("Response") is not None and f.action_id == aid, within)

    async def login(self, user: str = "cc", secret: str = "ccsecret", events: str = "on") -> Frame:
        return await self.action("Login", ("Username", user), ("Secret", secret), ("Events", events))

    async def close(self) -> None:
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)
        except (TimeoutError, ConnectionError):
            pass
