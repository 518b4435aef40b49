"""The child side of :class:`recordings.transcribe.TranscriberPool`.

Runs in a process of its own (``spawn`` context): loads the Vosk model once,
then answers jobs on its end of a pipe until it receives ``None`` or the pipe
closes. A Kaldi abort or a kill ends this process only; the pool sees the pipe
close and starts another.

Wire protocol (pickled tuples over a ``multiprocessing`` Connection):

* child -> parent, once: ``("ready", pid)`` or ``("start_failed", message)``;
* parent -> child: ``(job_id, path)`` or ``None`` (exit);
* child -> parent: ``("ok", job_id, payload_dict)`` or ``("error", job_id, RecordingError)``.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from recordings.audio import load_for_model
from recordings.errors import RecordingError, TranscriptionFailed

CHUNK_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """What a worker needs; picklable, passed at spawn."""

    model_path: str
    model_rate: int
    silence_threshold_dbfs: float | None
    sox_binary: str | None
    vosk_log_level: int = -1


def worker_main(conn: Connection, config: WorkerConfig) -> None:
    """Entry point of a worker process."""
    # Ctrl-C on the server reaches the whole process group; the server shuts
    # its workers down itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import vosk

        vosk.SetLogLevel(config.vosk_log_level)
        model = vosk.Model(config.model_path)
    except Exception as exc:  # model missing or unreadable: report, then exit
        _send(conn, ("start_failed", f"{type(exc).__name__}: {exc}"))
        return
    if not _send(conn, ("ready", os.getpid())):
        return
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        job_id, path = message
        try:
            payload = transcribe_file(model, path, config)
        except RecordingError as exc:
            reply: tuple[Any, ...] = ("error", job_id, exc)
        except Exception as exc:
            reply = (
                "error",
                job_id,
                TranscriptionFailed(
                    path,
                    "decoder_error",
                    f"解码出错：{type(exc).__name__}",
                    f"decoder error: {type(exc).__name__}: {exc}",
                ),
            )
        else:
            reply = ("ok", job_id, payload)
        if not _send(conn, reply):
            return


def _send(conn: Connection, message: object) -> bool:
    try:
        conn.send(message)
    except (BrokenPipeError, EOFError, OSError):
        return False
    return True


def transcribe_file(model: Any, path: str, config: WorkerConfig) -> dict[str, Any]:
    """Read, resample and decode one recording with a fresh recognizer."""
    audio, pcm = load_for_model(
        path,
        config.model_rate,
        silence_threshold_dbfs=config.silence_threshold_dbfs,
        sox_binary=config.sox_binary,
    )
    text, words = decode_pcm16(model, pcm, config.model_rate)
    return {
        "text": text,
        "words": words,
        "duration_s": audio.duration_s,
        "sample_rate": audio.sample_rate,
        "source_format": audio.source_format,
        "source_channels": audio.source_channels,
    }


def decode_pcm16(model: Any, pcm: bytes, rate: int) -> tuple[str, list[dict[str, Any]]]:
    """Decode 16-bit mono PCM at ``rate``; (text, words with times in seconds)."""
    import vosk

    recognizer = vosk.KaldiRecognizer(model, float(rate))
    recognizer.SetWords(True)
    texts: list[str] = []
    words: list[dict[str, Any]] = []

    def collect(result_json: str) -> None:
        result = json.loads(result_json)
        if result.get("text"):
            texts.append(result["text"])
        for item in result.get("result", ()):
            words.append(
                {
                    "word": str(item["word"]),
                    "start": float(item["start"]),
                    "end": float(item["end"]),
                    "conf": float(item.get("conf", 1.0)),
                }
            )

    step = max(2, int(rate * CHUNK_SECONDS) * 2)
    for offset in range(0, len(pcm), step):
        if recognizer.AcceptWaveform(pcm[offset : offset + step]):
            collect(recognizer.Result())
    collect(recognizer.FinalResult())
    return " ".join(texts), words
