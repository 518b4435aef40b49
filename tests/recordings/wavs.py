"""Helpers that build WAV files byte by byte for the recording tests."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
KO_HELLO = FIXTURES / "recordings" / "ko_hello_8k.wav"
VOICEMAIL = FIXTURES / "asterisk" / "voicemail-spool" / "default" / "8000" / "INBOX" / "msg0000.wav"


def tone(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


def wav_bytes(
    payload: bytes,
    *,
    rate: int = 8000,
    channels: int = 1,
    bits: int = 16,
    tag: int = 1,
    block_align: int | None = None,
    data_size: int | None = None,
    extra_chunks: bytes = b"",
) -> bytes:
    align = channels * bits // 8 if block_align is None else block_align
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + extra_chunks
        + b"data"
        + struct.pack("<I", len(payload) if data_size is None else data_size)
        + payload
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def pcm16(samples: np.ndarray) -> bytes:
    return np.clip(np.rint(samples * 32767), -32768, 32767).astype("<i2").tobytes()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
