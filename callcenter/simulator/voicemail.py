"""app_voicemail's spool: ``<spool>/<context>/<mailbox>/INBOX/msgNNNN.{wav,txt}``."""

from __future__ import annotations

import struct
import wave
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callcenter.simulator.pbx import Channel


def write_silence(path: Path, seconds: float, rate: int = 8000) -> None:
    """An 8 kHz 16-bit mono WAV of near-silence (a faint tone so it is not empty)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = int(seconds * rate)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(struct.pack("<h", 0) * frames)


def _one_line(value: str) -> str:
    """VM_CATEGORY as app_voicemail writes it: on one line."""
    return value.replace("\r", " ").replace("\n", " ")


class VoicemailSpool:
    def __init__(self, root: Path) -> None:
        self.root = root

    def inbox(self, context: str, mailbox: str) -> Path:
        return self.root / context / mailbox / "INBOX"

    def count(self, context: str, mailbox: str) -> tuple[int, int]:
        """(new, old) message counts."""
        def n(folder: str) -> int:
            d = self.root / context / mailbox / folder
            return len(list(d.glob("msg*.txt"))) if d.is_dir() else 0

        return n("INBOX"), n("Old")

    def deposit(self, context: str, mailbox: str, *, channel: Channel, caller_channel_name: str,
                duration: int, wav: Path | None, when: datetime, exten: str, dial_context: str) -> Path:
        inbox = self.inbox(context, mailbox)
        inbox.mkdir(parents=True, exist_ok=True)
        n = 0
        while (inbox / f"msg{n:04d}.txt").exists():
            n += 1
        stem = inbox / f"msg{n:04d}"
        wav_path = stem.with_suffix(".wav")
        if wav is not None and wav.is_file():
            wav_path.write_bytes(wav.read_bytes())
        else:
            write_silence(wav_path, duration)
        cid = f'"{channel.cid_name}" <{channel.cid_num}>' if channel.cid_name else f"<{channel.cid_num}>"
        origtime = int(when.timestamp())
        origdate = when.strftime("%a %b %d %I:%M:%S %p UTC %Y")
        text = (
            ";\n; Message Information file\n;\n[message]\n"
            f"origmailbox={mailbox}\ncontext={dial_context}\nmacrocontext=\nexten={exten}\n"
            f"rdnis=unknown\npriority={channel.priority}\ncallerchan={caller_channel_name}\n"
            f"callerid={cid}\norigdate={origdate}\norigtime={origtime}\n"
            f"category={_one_line(channel.variables.get('VM_CATEGORY', ''))}\n"
            f"msg_id={origtime}-{n:08d}\nflag=\nduration={duration}\n"
        )
        # The .txt last: a watcher that sees it can read the finished .wav.
        tmp = stem.with_suffix(".txt.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(stem.with_suffix(".txt"))
        return wav_path
