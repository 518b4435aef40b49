"""Errors of the recordings domain.

Every error carries a stable ``error_id`` (what an API client or a ticket note
keys on), a ``details`` dict, and a message in Chinese first, then English
(``中文 / English``), because the message ends up in a ticket that staff read.
They have the same shape as ``callcenter.errors.DomainError`` (``message``,
``details``, ``http_status``, ``to_json()``) without importing it: the
recordings domain does not depend on the server's wiring.

The errors cross process boundaries (a transcription worker raises them, the
server re-raises them), so they pickle with their messages and details intact.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

_E = TypeVar("_E", bound="RecordingError")


class RecordingError(Exception):
    """Base of every error about a recording or its transcription."""

    error_id: ClassVar[str] = "recording_error"
    http_status: ClassVar[int] = 500

    def __init__(
        self,
        message_zh: str,
        message_en: str,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        self.message_zh = message_zh
        self.message_en = message_en
        self.details: dict[str, Any] = dict(details or {})
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """Chinese first, then English: what a ticket note shows."""
        return f"{self.message_zh} / {self.message_en}"

    def to_json(self) -> dict[str, Any]:
        """The JSON shape the web layer answers with."""
        return {"error": self.error_id, "message": self.message, "details": self.details}

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message_zh, self.message_en, self.details))


def _rebuild(cls: type[_E], message_zh: str, message_en: str, details: dict[str, Any]) -> _E:
    error = cls.__new__(cls)
    RecordingError.__init__(error, message_zh, message_en, details)
    return error


# --- audio input -----------------------------------------------------------


class AudioError(RecordingError):
    """The recording cannot be read as audio."""

    error_id = "audio_error"
    http_status = 422


class AudioFileNotFound(AudioError):
    error_id = "audio_not_found"

    def __init__(self, path: str) -> None:
        super().__init__(
            f"录音文件不存在：{path}",
            f"recording file not found: {path}",
            {"path": path},
        )


class EmptyAudioFile(AudioError):
    """The file has no bytes at all (a recording that never started)."""

    error_id = "audio_empty_file"

    def __init__(self, path: str) -> None:
        super().__init__(
            f"录音文件为空（0 字节）：{path}",
            f"recording file is empty (0 bytes): {path}",
            {"path": path},
        )


class NotAWavFile(AudioError):
    error_id = "audio_not_wav"

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(
            f"不是 WAV 录音文件：{path}",
            f"not a WAV recording: {path} ({reason})",
            {"path": path, "reason": reason},
        )


class TruncatedAudio(AudioError):
    """The header promises more audio than the file holds."""

    error_id = "audio_truncated"

    def __init__(self, path: str, reason: str, **details: Any) -> None:
        super().__init__(
            f"录音文件不完整（被截断）：{path}",
            f"recording is truncated: {path} ({reason})",
            {"path": path, "reason": reason, **details},
        )


class CorruptAudio(AudioError):
    error_id = "audio_corrupt"

    def __init__(self, path: str, reason: str, **details: Any) -> None:
        super().__init__(
            f"录音文件已损坏：{path}",
            f"recording is corrupt: {path} ({reason})",
            {"path": path, "reason": reason, **details},
        )


class UnsupportedAudioFormat(AudioError):
    error_id = "audio_unsupported_format"

    def __init__(self, path: str, audio_format: str, reason: str) -> None:
        super().__init__(
            f"不支持的录音格式 {audio_format}：{path}",
            f"unsupported audio format {audio_format}: {path} ({reason})",
            {"path": path, "format": audio_format, "reason": reason},
        )


class ZeroLengthAudio(AudioError):
    """A well-formed file that holds no samples (the caller hung up at once)."""

    error_id = "audio_zero_length"

    def __init__(self, path: str) -> None:
        super().__init__(
            f"录音时长为零，没有声音数据：{path}",
            f"recording has no samples (zero length): {path}",
            {"path": path},
        )


class SilentAudio(AudioError):
    """The recording holds only silence: nothing to transcribe."""

    error_id = "audio_silent"

    def __init__(
        self, path: str, duration_s: float, peak_dbfs: float, threshold_dbfs: float
    ) -> None:
        super().__init__(
            f"录音中没有说话声（静音 {duration_s:.1f} 秒）：{path}",
            f"recording is silent ({duration_s:.1f} s, loudest {peak_dbfs:.1f} dBFS"
            f" < {threshold_dbfs:.1f} dBFS): {path}",
            {
                "path": path,
                "duration_s": round(duration_s, 3),
                "peak_dbfs": round(peak_dbfs, 1),
                "threshold_dbfs": threshold_dbfs,
            },
        )


# --- model and transcription -------------------------------------------------


class ModelNotFound(RecordingError):
    error_id = "vosk_model_not_found"
    http_status = 503

    def __init__(self, path: str | None, reason: str) -> None:
        super().__init__(
            f"找不到语音识别模型：{path or '未配置 [vosk] model_path'}",
            f"speech recognition model not found: {path or 'not configured'} ({reason})",
            {"path": path, "reason": reason},
        )


class TranscriptionFailed(RecordingError):
    """Decoding did not produce a transcript; ``details['reason']`` says why.

    Reasons: ``worker_died`` (the decoder process crashed or was killed, also
    on the retry), ``decoder_error`` (the decoder raised), ``worker_start_failed``,
    ``pool_closed``, ``no_workers``.
    """

    error_id = "transcription_failed"
    http_status = 503

    def __init__(
        self, path: str, reason: str, message_zh: str, message_en: str, **details: Any
    ) -> None:
        super().__init__(
            f"语音转写失败：{path}（{message_zh}）",
            f"transcription failed: {path} ({message_en})",
            {"path": path, "reason": reason, **details},
        )


class TranscriptionTimeout(TranscriptionFailed):
    error_id = "transcription_timeout"

    def __init__(self, path: str, timeout_s: float) -> None:
        super().__init__(
            path,
            "timeout",
            f"超过 {timeout_s:g} 秒未完成，已终止转写进程",
            f"did not finish within {timeout_s:g} s; its worker was killed",
            timeout_s=timeout_s,
        )
