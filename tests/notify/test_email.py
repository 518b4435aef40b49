"""E-mail through a minimal SMTP server on a real socket: a 4xx is retried, a 5xx is not."""

from __future__ import annotations

import asyncio
import email
from email import policy
from typing import Any

from callcenter.clock import ManualClock
from callcenter.notify import (
    EmailNotifier,
    Notification,
    RetryingNotifier,
    RetryPolicy,
    SmtpSettings,
)


class TinySmtp:
    """Speaks just enough SMTP; ``mail_replies`` are the answers to MAIL FROM, in turn."""

    def __init__(self, mail_replies: list[str]) -> None:
        self.mail_replies = list(mail_replies)
        self.messages: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 tiny ESMTP\r\n")
        try:
            while line := await reader.readline():
                cmd = line.decode().strip().upper()
                if cmd.startswith(("EHLO", "HELO")):
                    writer.write(b"250-tiny\r\n250 8BITMIME\r\n")
                elif cmd.startswith("MAIL FROM"):
                    reply = self.mail_replies.pop(0) if self.mail_replies else "250 ok"
                    writer.write(reply.encode() + b"\r\n")
                elif cmd.startswith("RCPT TO"):
                    writer.write(b"250 ok\r\n")
                elif cmd == "DATA":
                    writer.write(b"354 go\r\n")
                    await writer.drain()
                    data = b""
                    while not data.endswith(b"\r\n.\r\n"):
                        data += await reader.readline()
                    self.messages.append(data[:-5])
                    writer.write(b"250 queued\r\n")
                elif cmd == "RSET":
                    writer.write(b"250 ok\r\n")
                elif cmd == "QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    break
                else:
                    writer.write(b"502 no\r\n")
                await writer.drain()
        finally:
            writer.close()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def drive(clock: ManualClock, coro: Any) -> Any:
    task = asyncio.ensure_future(coro)
    while not task.done():
        await asyncio.sleep(0.01)
        if clock.sleepers:
            await clock.advance(60)
    return task.result()


MSG = Notification(title="来电：张伟", text="夜间报修", fields=(("房号", "3栋1单元1201室"),), key="e1")


async def test_temporary_failure_is_retried_then_delivered() -> None:
    smtp = TinySmtp(["451 try later"])
    port = await smtp.start()
    try:
        clock = ManualClock()
        notifier = RetryingNotifier(
            EmailNotifier(SmtpSettings(host="127.0.0.1", port=port, sender="cc@example.cn",
                                       timeout_s=5), ("duty@example.cn",)),
            clock=clock, policy=RetryPolicy(attempts=3, base_delay_s=1))
        result = await drive(clock, notifier.send(MSG))
        assert result.ok and result.attempts == 2 and result.channel == "email"
        assert len(smtp.messages) == 1
        parsed = email.message_from_bytes(smtp.messages[0], policy=policy.default)
        assert parsed["Subject"] == "来电：张伟" and parsed["To"] == "duty@example.cn"
        body = parsed.get_body().get_content()  # type: ignore[union-attr]
        assert "房号：3栋1单元1201室" in body
    finally:
        await smtp.stop()


async def test_permanent_failure_is_not_retried() -> None:
    smtp = TinySmtp(["550 no such sender"] * 5)
    port = await smtp.start()
    try:
        clock = ManualClock()
        notifier = RetryingNotifier(
            EmailNotifier(SmtpSettings(host="127.0.0.1", port=port, timeout_s=5), ("a@b.cn",)),
            clock=clock, policy=RetryPolicy(attempts=3, base_delay_s=1))
        result = await drive(clock, notifier.send(MSG))
        assert not result.ok and result.attempts == 1 and "550" in result.error
        assert smtp.messages == []
    finally:
        await smtp.stop()
