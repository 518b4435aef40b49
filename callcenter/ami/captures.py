"""Read recorded AMI sessions (``tests/fixtures/asterisk``): what the server sent.

A capture is the raw CRLF stream as the client received it, with ``# `` comment
lines at the top and the client's own frames interleaved as ``>>> `` lines.
``server_bytes`` keeps only what Asterisk sent, byte for byte; ``client_frames``
gives what the client sent, for tests that script a server from a capture.
"""

from __future__ import annotations


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def server_bytes(data: bytes) -> bytes:
    out: list[bytes] = []
    in_client_frame = False
    header = True
    for line in _lines(data):
        if line.startswith(b"# "):
            continue
        if header and line == b"\n":
            continue  # the annotation's own blank line (LF only, not from Asterisk)
        header = False
        if line.startswith(b">>> "):
            in_client_frame = True
            continue
        if in_client_frame:
            # The blank line that ended the client's frame.
            in_client_frame = False
            if not line.strip():
                continue
        out.append(line)
    return b"".join(out)


def client_frames(data: bytes) -> list[list[tuple[str, str]]]:
    frames: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    for line in _lines(data):
        if line.startswith(b">>> "):
            key, _, value = line[4:].decode("utf-8").rstrip("\r\n").partition(":")
            current.append((key.strip(), value[1:] if value.startswith(" ") else value))
        elif current:
            frames.append(current)
            current = []
    if current:
        frames.append(current)
    return frames
