"""Read Asterisk app_voicemail's spool: ``<spool>/<context>/<mailbox>/<folder>/msgNNNN.<fmt>``.

Pure file reading, no database. The ``.txt`` beside each recording is an INI
file with a ``[message]`` section (callerid, origtime, duration, msg_id, ...).
app_voicemail writes one audio file per format in voicemail.conf's ``format=``
(``wav`` → ``.wav``, ``wav49`` → ``.WAV``, ``gsm`` → ``.gsm``, ...); the best
one is picked (:data:`AUDIO_PREFERENCE`, then any other, which the ingest
reports as unsupported rather than dropping the message). A message is only
reported once its metadata and an audio file exist and the metadata parses.
"""

from __future__ import annotations

import configparser
import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

FOLDERS = ("INBOX", "Old", "Urgent")
_MSG_RE = re.compile(r"^msg(\d{4})\.txt$")
_AUDIO_RE = re.compile(r"^(msg\d{4})\.([0-9A-Za-z]{1,10})$")
AUDIO_PREFERENCE = (".wav", ".WAV", ".gsm")
"""Best first: PCM WAV, then WAV49 (GSM in RIFF, Asterisk's ``.WAV``), then raw GSM."""
_CALLERID_RE = re.compile(r'^\s*"?(?P<name>[^"<]*?)"?\s*<(?P<number>[^>]*)>\s*$')
_SAFE_ID = re.compile(r"[^0-9A-Za-z._-]")


@dataclass(frozen=True, slots=True)
class SpoolMessage:
    context: str
    mailbox: str
    folder: str
    msgnum: str
    audio_path: Path
    txt_path: Path
    msg_id: str
    caller_number: str
    caller_name: str
    origtime: datetime | None
    duration_s: float | None
    category: str = ""  # VM_CATEGORY when the message was left
    has_msg_id: bool = True  # False: ``msg_id`` is :func:`fallback_msg_id`'s

    @property
    def audio_format(self) -> str:
        """The audio file's suffix as Asterisk wrote it (``.wav``, ``.WAV``, ``.gsm``, ...)."""
        return self.audio_path.suffix

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


def fallback_msg_id(meta: dict[str, str], mailbox: str, msgnum: str) -> str:
    """An identity for a message whose ``.txt`` has no ``msg_id`` (Asterisk before 11).

    Made of what stays the same when app_voicemail renumbers the message
    (a deletion resequences the folder) or moves it to ``Old/``: the original
    time, the mailbox it was left in, the caller, its channel and the duration:
    ``<origtime>-<16 hex digits>``. Without an ``origtime`` nothing tells two
    such messages apart, so the message number is kept in: a renumbered one is
    then seen as new, which makes a second ticket rather than losing one."""
    raw_time = meta.get("origtime", "").strip()
    parts = [meta.get("origmailbox", "").strip() or mailbox, meta.get("callerid", "").strip(),
             meta.get("callerchan", "").strip(), meta.get("duration", "").strip()]
    if not raw_time.isdigit():
        raw_time, parts = "unknown", [*parts, msgnum]
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]
    return f"{raw_time}-{digest}"


def best_audio(candidates: list[Path]) -> Path | None:
    """The file to ingest among one message's audio files: by
    :data:`AUDIO_PREFERENCE`, else the first other format by name."""
    by_suffix = {p.suffix: p for p in candidates}
    for suffix in AUDIO_PREFERENCE:
        if suffix in by_suffix:
            return by_suffix[suffix]
    others = sorted(p for p in candidates if p.suffix.lower() != ".txt")
    return others[0] if others else None


def _audio_files(folder: Path) -> dict[str, list[Path]]:
    """Audio files of a folder by message stem (``msg0003`` → its files)."""
    out: dict[str, list[Path]] = {}
    for path in folder.iterdir():
        m = _AUDIO_RE.match(path.name)
        if m is None or m.group(2).lower() == "txt" or not path.is_file():
            continue
        out.setdefault(m.group(1), []).append(path)
    return out


def read_message(context: str, mailbox: str, folder: str, txt_path: Path,
                 audio_path: Path | None = None) -> SpoolMessage:
    m = _MSG_RE.match(txt_path.name)
    if m is None:
        raise ValueError(f"not a message file: {txt_path.name}")
    if audio_path is None:
        audio_path = best_audio(list(_audio_files(txt_path.parent).get(txt_path.stem, [])))
        if audio_path is None:
            raise ValueError(f"no audio file beside {txt_path.name}")
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
    has_msg_id = bool(msg_id)
    if not msg_id:
        msg_id = fallback_msg_id(meta, mailbox, m.group(1))
    return SpoolMessage(context=context, mailbox=mailbox, folder=folder, msgnum=m.group(1),
                        audio_path=audio_path, txt_path=txt_path, msg_id=msg_id,
                        caller_number=number[:32], caller_name=name[:100], origtime=origtime,
                        duration_s=duration, category=meta.get("category", "").strip()[:250],
                        has_msg_id=has_msg_id)


def scan_spool(spool_dir: Path, *, contexts: tuple[str, ...] | None = None,
               mailboxes: tuple[str, ...] | None = None,
               folders: tuple[str, ...] = FOLDERS) -> list[SpoolMessage]:
    """Every complete message under the spool, oldest message number first.

    ``contexts`` / ``mailboxes`` restrict the scan (None: all). A message with
    no audio file yet (still being written) or whose ``.txt`` does not parse
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
                try:
                    audio = _audio_files(fdir)
                except OSError as exc:
                    log.warning("cannot list voicemail folder %s: %s", fdir, exc)
                    continue
                for txt in sorted(fdir.glob("msg[0-9][0-9][0-9][0-9].txt")):
                    best = best_audio(audio.get(txt.stem, []))
                    if best is None:
                        continue
                    try:
                        found.append(read_message(ctx_dir.name, box_dir.name, folder, txt,
                                                  best))
                    except (OSError, ValueError) as exc:
                        log.warning("skipping voicemail %s: %s", txt, exc)
    return found
