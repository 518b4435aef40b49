"""Read Asterisk app_voicemail's spool: ``<spool>/<context>/<mailbox>/<folder>/msgNNNN.{wav,txt}``.

Pure file reading, no database. The ``.txt`` beside each recording is an INI
file with a ``[message]`` section (callerid, origtime, duration, msg_id, ...).
A message is only reported once both files exist and the metadata parses.
"""

from __future__ import annotations

import configparser
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

FOLDERS = ("INBOX", "Old", "Urgent")
_MSG_RE = re.compile(r"^msg(\d{4})\.txt$")
_CALLERID_RE = re.compile(r'^\s*"?(?P<name>[^"<]*?)"?\s*<(?P<number>[^>]*)>\s*$')
_SAFE_ID = re.compile(r"[^0-9A-Za-z._-]")


@dataclass(frozen=True, slots=True)
class SpoolMessage:
    context: str
    mailbox: str
    folder: str
    msgnum: str
    wav_path: Path
    txt_path: Path
    msg_id: str
    caller_number: str
    caller_name: str
    origtime: datetime | None
    duration_s: float | None
    category: str = ""  # VM_CATEGORY when the message was left

    @property
    def identity(self) -> tuple[str, str, str]:
        return self.context, self.mailbox, self.msg_id


def parse_callerid(value: str) -> tuple[str, str]:
    """``"王小明" <13912345678>`` → ("王小明", "13912345678"); a bare number → ("", number)."""
    value = value.strip()
    m = _CALLERID_RE.match(value)
    if m:
        name = m.group("name").strip()
        number = m.group("number").strip()
    else:
        name, number = "", value
    if number.lower() in ("unknown", "anonymous", ""):
        number = ""
    if name.lower() in ("unknown", "<unknown>"):
        name = ""
    return name, number


def parse_message_txt(text: str) -> dict[str, str]:
    """The ``[message]`` section as a dict; raises ``ValueError`` when there is none."""
    parser = configparser.ConfigParser(interpolation=None, strict=False,
                                       comment_prefixes=(";", "#"), delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        raise ValueError(f"unreadable voicemail metadata: {exc}") from None
    if not parser.has_section("message"):
        raise ValueError("no [message] section")
    return dict(parser.items("message"))


def read_message(context: str, mailbox: str, folder: str, txt_path: Path) -> SpoolMessage:
    m = _MSG_RE.match(txt_path.name)
    if m is None:
        raise ValueError(f"not a message file: {txt_path.name}")
    wav_path = txt_path.with_suffix(".wav")
    meta = parse_message_txt(txt_path.read_text(encoding="utf-8", errors="replace"))
    name, number = parse_callerid(meta.get("callerid", ""))
    origtime: datetime | None = None
    raw_time = meta.get("origtime", "").strip()
    if raw_time.isdigit():
        origtime = datetime.fromtimestamp(int(raw_time), UTC)
    duration: float | None = None
    try:
        duration = float(meta.get("duration", "").strip())
    except ValueError:
        duration = None
    msg_id = _SAFE_ID.sub("", meta.get("msg_id", "").strip())[:80]
    if not msg_id:
        # Old Asterisk versions write no msg_id: the original time and number stand in.
        msg_id = f"{raw_time or 'unknown'}-{m.group(1)}"
    return SpoolMessage(context=context, mailbox=mailbox, folder=folder, msgnum=m.group(1),
                        wav_path=wav_path, txt_path=txt_path, msg_id=msg_id,
                        caller_number=number[:32], caller_name=name[:100], origtime=origtime,
                        duration_s=duration, category=meta.get("category", "").strip()[:250])


def scan_spool(spool_dir: Path, *, contexts: tuple[str, ...] | None = None,
               mailboxes: tuple[str, ...] | None = None,
               folders: tuple[str, ...] = FOLDERS) -> list[SpoolMessage]:
    """Every complete message under the spool, oldest message number first.

    ``contexts`` / ``mailboxes`` restrict the scan (None: all). A message whose
    ``.wav`` is missing (still being written) or whose ``.txt`` does not parse
    is skipped with a log line and seen again next scan."""
    found: list[SpoolMessage] = []
    if not spool_dir.is_dir():
        return found
    for ctx_dir in sorted(p for p in spool_dir.iterdir() if p.is_dir()):
        if contexts is not None and ctx_dir.name not in contexts:
            continue
        for box_dir in sorted(p for p in ctx_dir.iterdir() if p.is_dir()):
            if mailboxes is not None and box_dir.name not in mailboxes:
                continue
            for folder in folders:
                fdir = box_dir / folder
                if not fdir.is_dir():
                    continue
                for txt in sorted(fdir.glob("msg[0-9][0-9][0-9][0-9].txt")):
                    if not txt.with_suffix(".wav").is_file():
                        continue
                    try:
                        found.append(read_message(ctx_dir.name, box_dir.name, folder, txt))
                    except (OSError, ValueError) as exc:
                        log.warning("skipping voicemail %s: %s", txt, exc)
    return found
