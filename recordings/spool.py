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
import os
import re
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from recordings.safefs import REFUSALS, RefusalLog, RefusedFile, kind_of, read_beneath

log = logging.getLogger(__name__)

FOLDERS = ("INBOX", "Old", "Urgent")
_MSG_RE = re.compile(r"^msg(\d{4})\.txt$")
_AUDIO_RE = re.compile(r"^(msg\d{4})\.([0-9A-Za-z]{1,10})$")
AUDIO_PREFERENCE = (".wav", ".WAV", ".gsm")
"""Best first: PCM WAV, then WAV49 (GSM in RIFF, Asterisk's ``.WAV``), then raw GSM."""
_CALLERID_RE = re.compile(r'^\s*"?(?P<name>[^"<]*?)"?\s*<(?P<number>[^>]*)>\s*$')
_SAFE_ID = re.compile(r"[^0-9A-Za-z._-]")
MAX_TXT_BYTES = 64 * 1024
"""app_voicemail's ``.txt`` is a few hundred bytes; anything this large is not one."""


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


def _audio_files(folder: Path, refusals: RefusalLog | None = None
                 ) -> tuple[dict[str, list[Path]], set[str]]:
    """Audio files of a folder by message stem (``msg0003`` → its files), and the
    stems refused because one of their files (audio or ``.txt``) is a link, a
    FIFO, a device or a directory: such a message is never read (lstat only,
    nothing is opened or followed here)."""
    out: dict[str, list[Path]] = {}
    refused: set[str] = set()
    with os.scandir(folder) as entries:
        for entry in entries:
            m = _AUDIO_RE.match(entry.name)
            if m is None:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                refused.add(m.group(1))
                if refusals is not None:
                    refusals.refuse(Path(entry.path), f"{kind_of(st.st_mode)}, not a regular file",
                                    st.st_ino)
                continue
            if m.group(2).lower() == "txt":
                continue
            out.setdefault(m.group(1), []).append(Path(entry.path))
    return out, refused


def read_message(context: str, mailbox: str, folder: str, txt_path: Path,
                 audio_path: Path | None = None, *, root: Path | None = None) -> SpoolMessage:
    """One message from its ``.txt`` (read through :func:`recordings.safefs.open_beneath`
    from ``root``, the spool, or from its own folder: no link is followed)."""
    m = _MSG_RE.match(txt_path.name)
    if m is None:
        raise ValueError(f"not a message file: {txt_path.name}")
    if audio_path is None:
        audio, refused = _audio_files(txt_path.parent)
        if txt_path.stem in refused:
            raise RefusedFile(txt_path, "a file of this message is a link or not a regular file")
        audio_path = best_audio(list(audio.get(txt_path.stem, [])))
        if audio_path is None:
            raise ValueError(f"no audio file beside {txt_path.name}")
    if root is None:
        root, relative = txt_path.parent, txt_path.name
    else:
        relative = str(txt_path.relative_to(root))
    raw = read_beneath(root, relative, max_bytes=MAX_TXT_BYTES)
    meta = parse_message_txt(raw.decode("utf-8", errors="replace"))
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


def _subdirs(parent: Path, refusals: RefusalLog | None) -> list[Path]:
    """Real sub-folders, sorted; a symlinked one is refused (logged once), not entered."""
    out = []
    with os.scandir(parent) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                out.append(Path(entry.path))
            elif entry.is_symlink() and refusals is not None:
                refusals.refuse(Path(entry.path), "a symbolic link to a folder, not entered",
                                entry.inode())
    return sorted(out)


def scan_spool(spool_dir: Path, *, contexts: tuple[str, ...] | None = None,
               mailboxes: tuple[str, ...] | None = None,
               folders: tuple[str, ...] = FOLDERS,
               refusals: RefusalLog | None = REFUSALS) -> list[SpoolMessage]:
    """Every complete message under the spool, oldest message number first.

    ``contexts`` / ``mailboxes`` restrict the scan (None: all). A message with
    no audio file yet (still being written) or whose ``.txt`` does not parse
    is skipped with a log line and seen again next scan. A message one of whose
    files is a symbolic link (to anywhere), a FIFO, a device or a directory, or
    whose ``.txt`` is larger than :data:`MAX_TXT_BYTES`, is refused: logged once
    in ``refusals`` and never read (:mod:`recordings.safefs`)."""
    found: list[SpoolMessage] = []
    if not spool_dir.is_dir():
        return found
    for ctx_dir in _subdirs(spool_dir, refusals):
        if contexts is not None and ctx_dir.name not in contexts:
            continue
        for box_dir in _subdirs(ctx_dir, refusals):
            if mailboxes is not None and box_dir.name not in mailboxes:
                continue
            for folder in folders:
                fdir = box_dir / folder
                try:
                    st = os.lstat(fdir)
                except FileNotFoundError:
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    if refusals is not None:
                        refusals.refuse(fdir, f"{kind_of(st.st_mode)}, not a folder", st.st_ino)
                    continue
                try:
                    audio, refused = _audio_files(fdir, refusals)
                except OSError as exc:
                    log.warning("cannot list voicemail folder %s: %s", fdir, exc)
                    continue
                for stem in sorted(audio):
                    if stem in refused:
                        continue
                    txt = fdir / f"{stem}.txt"
                    if not _MSG_RE.match(txt.name):
                        continue
                    best = best_audio(audio[stem])
                    if best is None:
                        continue
                    try:
                        found.append(read_message(ctx_dir.name, box_dir.name, folder, txt,
                                                  best, root=spool_dir))
                    except FileNotFoundError:
                        continue  # the audio came first; its .txt is on the way
                    except RefusedFile as exc:
                        if refusals is not None:
                            refusals.refuse(exc.path, exc.reason)
                    except (OSError, ValueError) as exc:
                        log.warning("skipping voicemail %s: %s", txt, exc)
    return found
