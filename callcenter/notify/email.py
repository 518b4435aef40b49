"""E-mail through an SMTP relay (aiosmtplib)."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib

from callcenter.notify.base import Notification, NotifyError


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int = 25
    sender: str = "callcenter@localhost"
    username: str = ""
    password: str = ""
    use_tls: bool = False
    start_tls: bool | None = None
    timeout_s: float = 10.0


class EmailNotifier:
    channel = "email"

    def __init__(self, smtp: SmtpSettings, recipients: tuple[str, ...]) -> None:
        if not recipients:
            raise ValueError("at least one recipient")
        self._smtp = smtp
        self._to = recipients

    def build(self, message: Notification) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self._smtp.sender
        msg["To"] = ", ".join(self._to)
        msg["Subject"] = message.title
        msg.set_content(message.as_text(), charset="utf-8")
        return msg

    async def send(self, message: Notification) -> None:
        s = self._smtp
        try:
            await aiosmtplib.send(
                self.build(message), hostname=s.host, port=s.port,
                username=s.username or None, password=s.password or None,
                use_tls=s.use_tls, start_tls=s.start_tls, timeout=s.timeout_s,
            )
        except aiosmtplib.SMTPResponseException as exc:
            # 4xx is a temporary failure, 5xx permanent.
            raise NotifyError(f"email: SMTP {exc.code} {exc.message}",
                              retryable=400 <= exc.code < 500,
                              details={"smtp_code": exc.code}) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise NotifyError(f"email: {type(exc).__name__}: {exc}", retryable=True,
                              details={"exception": type(exc).__name__}) from exc
