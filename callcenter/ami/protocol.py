"""The AMI byte stream as an ``asyncio.Protocol``: bytes in, frames out.

This replaces panoramisk 1.4's ``AMIProtocol``, which decodes each TCP read on
its own with ``errors='ignore'`` (a UTF-8 name split across two reads loses
characters) and mixes framing with action bookkeeping. Here decoding is the
pure ``FrameParser``'s job; the protocol only moves bytes and reports frames,
the banner and the end of the connection to its owner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from callcenter.ami.parser import Banner, Frame, FrameParser

log = logging.getLogger(__name__)

FrameCallback = Callable[[Frame], None]


class AmiProtocol(asyncio.Protocol):
    def __init__(self, on_frame: FrameCallback, *, name: str = "ami") -> None:
        self._on_frame = on_frame
        self._parser = FrameParser(on_junk=self._junk)
        self._name = name
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.banner: asyncio.Future[str] = loop.create_future()
        self.closed: asyncio.Future[str] = loop.create_future()
        self.junk_frames = 0

    # asyncio.Protocol ------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        for item in self._parser.feed(data):
            if isinstance(item, Banner):
                if not self.banner.done():
                    self.banner.set_result(item.text)
                continue
            if item.kind == "other":
                if item.headers:
                    log.warning("%s: AMI frame without Event/Response skipped (%d headers)",
                                self._name, len(item.headers))
                continue
            try:
                self._on_frame(item)
            except Exception:
                log.exception("%s: AMI frame handler failed on %s", self._name,
                              item.event or item.get("Response"))

    def _junk(self, frame: Frame) -> None:
        # Junk lines, bad UTF-8, over-long values: logged and skipped, the rest
        # of the frame (and the link) lives on. Lazy frames report this when
        # first read; an event nobody reads is never split into lines.
        self.junk_frames += 1
        log.warning("%s: skipped junk in AMI frame: %s", self._name,
                    "; ".join(frame.errors)[:300])

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"connection lost: {exc}" if exc else "connection closed by peer"
        if not self.banner.done():
            self.banner.set_exception(ConnectionError(reason))
            self.banner.exception()  # mark retrieved: nobody may be waiting
        self.close(reason)

    # ours -------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionError("transport is closed")
        self.transport.write(data)

    def close(self, reason: str, *, abort: bool = False) -> None:
        """Close (or abort: drop unsent data, no FIN wait) and record why."""
        if self.transport is not None and not self.transport.is_closing():
            if abort:
                self.transport.abort()
            else:
                self.transport.close()
        if not self.closed.done():
            self.closed.set_result(reason)
