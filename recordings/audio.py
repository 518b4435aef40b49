"""Reading recordings as Asterisk writes them, and getting them ready for a model.

Asterisk's voicemail writes, depending on ``format=`` in voicemail.conf:

* ``wav``  -- RIFF/WAVE, 8 kHz, 16-bit signed little-endian, mono (the default);
* ``WAV`` / ``wav49`` -- RIFF/WAVE holding GSM 06.10 (format tag 0x31);
* ``gsm`` -- raw GSM 06.10 frames;
* ``sln`` / ``sln16`` / ``ulaw`` / ``alaw`` -- headerless 16-bit or G.711 audio.

PCM and G.711 are decoded here with numpy; GSM needs the ``sox`` binary (optional
on a site). Anything wrong with a file raises a typed :class:`AudioError` whose
``error_id`` says what: empty file, not a WAV, truncated, corrupt, unsupported,
zero length, silent.

The RIFF parser works on bytes (:func:`parse_wav`), apart from file and process
I/O, so it can be fuzzed and fed the output of ``sox`` alike.
"""

from __future__ import annotations

import math
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from recordings.errors import (
    AudioFileNotFound,
    CorruptAudio,
    EmptyAudioFile,
    NotAWavFile,
    SilentAudio,
    TruncatedAudio,
    UnsupportedAudioFormat,
    ZeroLengthAudio,
)

FloatArray = npt.NDArray[np.float32]

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_ALAW = 0x0006
WAVE_FORMAT_MULAW = 0x0007
WAVE_FORMAT_GSM610 = 0x0031
WAVE_FORMAT_EXTENSIBLE = 0xFFFE

DEFAULT_MODEL_SAMPLE_RATE = 16000
DEFAULT_SILENCE_THRESHOLD_DBFS = -50.0
MAX_FILE_BYTES = 256 * 1024 * 1024
"""Refuse to read more than this (about 4.6 hours of 8 kHz 16-bit audio)."""

_FORMAT_NAMES = {
    WAVE_FORMAT_PCM: "PCM",
    WAVE_FORMAT_IEEE_FLOAT: "IEEE float",
    WAVE_FORMAT_ALAW: "A-law",
    WAVE_FORMAT_MULAW: "mu-law",
    WAVE_FORMAT_GSM610: "GSM 06.10 (WAV49)",
    0x0002: "MS ADPCM",
    0x0011: "IMA ADPCM",
    0x0055: "MP3",
}

# Headerless formats Asterisk writes, by file extension: (encoding, sample rate).
_RAW_FORMATS: dict[str, tuple[str, int]] = {
    ".sln": ("s16", 8000),
    ".raw": ("s16", 8000),
    ".sln16": ("s16", 16000),
    ".ulaw": ("ulaw", 8000),
    ".ul": ("ulaw", 8000),
    ".pcm": ("ulaw", 8000),  # Asterisk's .pcm is mu-law
    ".alaw": ("alaw", 8000),
    ".al": ("alaw", 8000),
}
_SOX_ONLY_EXTENSIONS = {".gsm": "gsm"}
RAW_SUFFIXES = frozenset(_RAW_FORMATS)
"""Headerless formats :func:`read_audio` decodes itself (lower-case suffixes)."""
SOX_SUFFIXES = frozenset(_SOX_ONLY_EXTENSIONS)
"""Suffixes :func:`read_audio` decodes only with sox."""


@dataclass(frozen=True, slots=True)
class Audio:
    """Mono audio as float32 samples in [-1, 1]."""

    samples: FloatArray
    sample_rate: int
    source_format: str
    source_channels: int = 1

    @property
    def duration_s(self) -> float:
        return duration_s(self.samples, self.sample_rate)

    def to_pcm16(self) -> bytes:
        return to_pcm16(self.samples)


# --- reading ---------------------------------------------------------------


def read_audio(
    path: str | Path, *, sox_binary: str | None = "sox", sox_timeout_s: float = 60.0
) -> Audio:
    """Read a recording into mono float samples at its own sample rate.

    ``sox_binary`` names the ``sox`` executable used for GSM (``.gsm``, WAV49);
    ``None`` means "no sox on this site": such files then raise
    :class:`UnsupportedAudioFormat`.
    """
    path = Path(path)
    name = str(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise AudioFileNotFound(name) from None
    if not path.is_file():
        raise AudioFileNotFound(name)
    if size == 0:
        raise EmptyAudioFile(name)
    if size > MAX_FILE_BYTES:
        raise UnsupportedAudioFormat(name, "oversized", f"{size} bytes > {MAX_FILE_BYTES} bytes")

    suffix = path.suffix.lower()
    if suffix in _SOX_ONLY_EXTENSIONS:
        return _decode_with_sox(path, _SOX_ONLY_EXTENSIONS[suffix], sox_binary, sox_timeout_s)
    data = path.read_bytes()
    if suffix in _RAW_FORMATS and not data.startswith(b"RIFF"):
        encoding, rate = _RAW_FORMATS[suffix]
        return _decode_raw(data, encoding, rate, name)
    try:
        return parse_wav(data, name=name)
    except UnsupportedAudioFormat as exc:
        if exc.details.get("format") in ("RIFX", "RF64") or sox_binary is None:
            raise
        if shutil.which(sox_binary) is None:
            raise UnsupportedAudioFormat(
                name,
                exc.details["format"],
                f"decoding it needs the sox program, which is not installed ({sox_binary})",
            ) from None
        return _decode_with_sox(path, None, sox_binary, sox_timeout_s)


def parse_wav(data: bytes, *, name: str = "<bytes>", lenient_sizes: bool = False) -> Audio:
    """Parse a RIFF/WAVE file held in memory.

    ``lenient_sizes`` accepts a data chunk whose declared size exceeds what is
    there (``sox`` writing to a pipe cannot go back to fix the sizes).
    """
    if not data:
        raise EmptyAudioFile(name)
    if len(data) < 12:
        if b"RIFF".startswith(data[:4]) or data.startswith(b"RIFF"):
            raise TruncatedAudio(name, f"only {len(data)} bytes, shorter than a RIFF header")
        raise NotAWavFile(name, "no RIFF header")
    magic, riff_size, wave = struct.unpack_from("<4sI4s", data, 0)
    if magic in (b"RIFX", b"RF64"):
        raise UnsupportedAudioFormat(name, magic.decode(), "only little-endian RIFF WAV is read")
    if magic != b"RIFF":
        raise NotAWavFile(name, "no RIFF header")
    if wave != b"WAVE":
        raise NotAWavFile(name, f"RIFF form type is {wave!r}, not WAVE")
    file_short = riff_size + 8 > len(data)

    fmt: bytes | None = None
    pcm: bytes | None = None
    trailing_after_empty_data = 0
    offset = 12
    while offset < len(data):
        if len(data) - offset < 8:
            if pcm is None:
                raise TruncatedAudio(name, f"chunk header cut off at byte {offset}", offset=offset)
            break
        chunk_id, chunk_size = struct.unpack_from("<4sI", data, offset)
        body_start = offset + 8
        available = len(data) - body_start
        if chunk_id == b"fmt ":
            if chunk_size > available:
                raise TruncatedAudio(
                    name, "fmt chunk cut off", declared=chunk_size, available=available
                )
            fmt = data[body_start : body_start + chunk_size]
        elif chunk_id == b"data":
            if chunk_size == 0 and available > 0 and not lenient_sizes:
                trailing_after_empty_data = available
                pcm = b""
            elif chunk_size > available or (lenient_sizes and chunk_size == 0):
                if not lenient_sizes:
                    raise TruncatedAudio(
                        name,
                        f"data chunk declares {chunk_size} bytes but only {available} are present",
                        declared=chunk_size,
                        available=available,
                    )
                pcm = data[body_start:]
            else:
                pcm = data[body_start : body_start + chunk_size]
            if fmt is None:
                raise CorruptAudio(name, "data chunk comes before the fmt chunk")
            break
        if not re.fullmatch(rb"[\x20-\x7e]{4}", chunk_id):
            raise CorruptAudio(
                name, f"garbage chunk id {chunk_id!r} at byte {offset}", offset=offset
            )
        offset = body_start + chunk_size + (chunk_size & 1)
    if fmt is None:
        if file_short:
            raise TruncatedAudio(name, "file ends before the fmt chunk")
        raise CorruptAudio(name, "no fmt chunk")
    if pcm is None:
        if file_short:
            raise TruncatedAudio(name, "file ends before the data chunk")
        raise CorruptAudio(name, "no data chunk")
    if trailing_after_empty_data:
        raise CorruptAudio(
            name,
            f"header says 0 data bytes but {trailing_after_empty_data} bytes follow"
            " (the recording was never finalised)",
            trailing_bytes=trailing_after_empty_data,
        )
    return _decode_wav_body(fmt, pcm, name, lenient_sizes)


def _decode_wav_body(fmt: bytes, pcm: bytes, name: str, lenient: bool) -> Audio:
    if len(fmt) < 16:
        raise CorruptAudio(name, f"fmt chunk is {len(fmt)} bytes, needs at least 16")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", fmt, 0)
    if tag == WAVE_FORMAT_EXTENSIBLE:
        if len(fmt) < 40:
            raise CorruptAudio(name, "WAVE_FORMAT_EXTENSIBLE fmt chunk is too short")
        tag = struct.unpack_from("<H", fmt, 24)[0]
    format_name = _FORMAT_NAMES.get(tag, f"WAV format tag 0x{tag:04x}")
    if channels == 0:
        raise CorruptAudio(name, "fmt chunk says 0 channels")
    if rate == 0:
        raise CorruptAudio(name, "fmt chunk says a sample rate of 0")
    decoders = {
        WAVE_FORMAT_PCM: {8: "u8", 16: "s16", 24: "s24", 32: "s32"},
        WAVE_FORMAT_IEEE_FLOAT: {32: "f32", 64: "f64"},
        WAVE_FORMAT_ALAW: {8: "alaw"},
        WAVE_FORMAT_MULAW: {8: "ulaw"},
    }
    if tag not in decoders:
        raise UnsupportedAudioFormat(name, format_name, "not PCM or G.711")
    encoding = decoders[tag].get(bits)
    if encoding is None:
        raise UnsupportedAudioFormat(name, f"{format_name} {bits}-bit", "unsupported sample size")
    if block_align != channels * bits // 8:
        raise CorruptAudio(
            name,
            f"block align {block_align} does not match {channels} channel(s) of {bits} bits",
        )
    if not pcm:
        raise ZeroLengthAudio(name)
    whole = len(pcm) - len(pcm) % block_align
    if whole != len(pcm) and not lenient:
        raise CorruptAudio(
            name,
            f"data size {len(pcm)} is not a whole number of {block_align}-byte frames",
        )
    if whole == 0:
        raise ZeroLengthAudio(name)
    samples = _decode_samples(pcm[:whole], encoding)
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    return Audio(
        samples=samples.astype(np.float32, copy=False),
        sample_rate=rate,
        source_format=f"{format_name} {bits}-bit",
        source_channels=channels,
    )


def _decode_raw(data: bytes, encoding: str, rate: int, name: str) -> Audio:
    width = 2 if encoding == "s16" else 1
    whole = len(data) - len(data) % width
    if whole == 0:
        raise ZeroLengthAudio(name)
    samples = _decode_samples(data[:whole], encoding)
    return Audio(samples=samples, sample_rate=rate, source_format=f"raw {encoding}")


def _decode_samples(raw: bytes, encoding: str) -> FloatArray:
    if encoding == "u8":
        return (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    if encoding == "s16":
        return np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    if encoding == "s24":
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        return value.astype(np.float32) / float(1 << 23)
    if encoding == "s32":
        return (np.frombuffer(raw, "<i4").astype(np.float64) / float(1 << 31)).astype(np.float32)
    if encoding == "f32":
        return np.clip(np.nan_to_num(np.frombuffer(raw, "<f4")), -1.0, 1.0).astype(np.float32)
    if encoding == "f64":
        return np.clip(np.nan_to_num(np.frombuffer(raw, "<f8")), -1.0, 1.0).astype(np.float32)
    if encoding == "ulaw":
        return _ULAW_TABLE[np.frombuffer(raw, np.uint8)]
    if encoding == "alaw":
        return _ALAW_TABLE[np.frombuffer(raw, np.uint8)]
    raise AssertionError(encoding)


def _ulaw_table() -> FloatArray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    value = np.where(u & 0x80, -magnitude, magnitude)
    return (value / 32768.0).astype(np.float32)


def _alaw_table() -> FloatArray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(
        exponent == 0,
        (mantissa << 4) + 8,
        ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0),
    )
    value = np.where(a & 0x80, magnitude, -magnitude)
    return (value / 32768.0).astype(np.float32)


_ULAW_TABLE = _ulaw_table()
_ALAW_TABLE = _alaw_table()


def _decode_with_sox(
    path: Path, sox_type: str | None, sox_binary: str | None, timeout_s: float
) -> Audio:
    name = str(path)
    label = "GSM 06.10" if sox_type == "gsm" else "non-PCM WAV"
    if sox_binary is None:
        raise UnsupportedAudioFormat(
            name, label, "decoding it needs the sox program, which is disabled"
        )
    executable = shutil.which(sox_binary)
    if executable is None:
        raise UnsupportedAudioFormat(
            name, label, f"decoding it needs the sox program, which is not installed ({sox_binary})"
        )
    command = [executable, "-V1"]
    if sox_type:
        command += ["-t", sox_type]
    command += [str(path), "-t", "wav", "-e", "signed-integer", "-b", "16", "-"]
    try:
        completed = subprocess.run(command, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise CorruptAudio(name, f"sox did not finish within {timeout_s:g} s") from None
    stderr = completed.stderr.decode("utf-8", "replace").strip()
    if completed.returncode != 0:
        raise CorruptAudio(name, f"sox could not decode it: {stderr or completed.returncode}")
    if len(completed.stdout) <= 44:
        raise ZeroLengthAudio(name)
    audio = parse_wav(completed.stdout, name=name, lenient_sizes=True)
    return Audio(
        samples=audio.samples,
        sample_rate=audio.sample_rate,
        source_format=f"{label} (via sox)",
        source_channels=audio.source_channels,
    )


# --- model rate ----------------------------------------------------------------


def model_sample_rate(model_dir: str | Path, default: int = DEFAULT_MODEL_SAMPLE_RATE) -> int:
    """The sample rate a Vosk/Kaldi model was trained on.

    Read from ``conf/mfcc.conf`` ``--sample-frequency``, else
    ``conf/model.conf``, else ``default`` (16000, what Vosk assumes).
    """
    model_dir = Path(model_dir)
    for conf in ("conf/mfcc.conf", "conf/model.conf"):
        try:
            text = (model_dir / conf).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        match = re.search(r"^\s*--sample-frequency\s*=\s*([0-9.]+)", text, re.MULTILINE)
        if match:
            return int(float(match.group(1)))
    return default


# --- resampling ------------------------------------------------------------


def resample(
    samples: npt.ArrayLike,
    src_rate: int,
    dst_rate: int,
    *,
    zero_crossings: int = 32,
    rolloff: float = 0.9,
    kaiser_beta: float = 8.6,
) -> FloatArray:
    """Band-limited rational resampling with a Kaiser-windowed sinc (polyphase).

    The low-pass cuts at ``rolloff`` times the Nyquist frequency of the lower
    of the two rates, so downsampling does not alias and upsampling does not
    leave spectral images. The filter has ``zero_crossings`` sinc lobes each
    side (counted at the lower rate); beta 8.6 gives about 80 dB of stopband.
    Output length is ``ceil(len * dst / src)``, aligned with the input (the
    filter delay is compensated).
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError("resample() takes mono samples")
    if src_rate <= 0 or dst_rate <= 0:
        raise ValueError("sample rates must be positive")
    if src_rate == dst_rate or x.size == 0:
        return x.astype(np.float32)
    g = math.gcd(src_rate, dst_rate)
    up, down = dst_rate // g, src_rate // g
    h, half = _design_filter(up, down, zero_crossings, rolloff, kaiser_beta)

    # Polyphase form: output m sits at position u = m*down on the upsampled
    # grid; it takes input k with tap h[u + half - k*up]. With kt the last
    # input reaching it and p its phase, the taps are h[p + j*up], j = 0..J-1.
    taps = -(-h.size // up)
    h = np.concatenate([h, np.zeros(taps * up - h.size)])
    phases = h.reshape(taps, up).T[:, ::-1]  # phases[p] = taps for x[kt-J+1 .. kt]
    n_out = -(-x.size * up // down)
    pad = taps + 1
    xp = np.concatenate([np.zeros(pad), x, np.zeros(pad + half // up + 1)])
    windows = np.lib.stride_tricks.sliding_window_view(xp, taps)
    out = np.empty(n_out, dtype=np.float64)
    chunk = max(1, (1 << 21) // taps)
    for start in range(0, n_out, chunk):
        m = np.arange(start, min(start + chunk, n_out), dtype=np.int64)
        pos = m * down + half
        kt, phase = pos // up, pos % up
        out[start : start + m.size] = np.einsum(
            "ij,ij->i", windows[kt - taps + 1 + pad], phases[phase]
        )
    return out.astype(np.float32)


def _design_filter(
    up: int, down: int, zero_crossings: int, rolloff: float, beta: float
) -> tuple[npt.NDArray[np.float64], int]:
    ratio = max(up, down)
    half = zero_crossings * ratio
    n = np.arange(-half, half + 1, dtype=np.float64)
    cutoff = rolloff / ratio  # fraction of the upsampled grid's Nyquist
    h = cutoff * np.sinc(cutoff * n) * np.kaiser(n.size, beta)
    # Each phase should pass DC with gain 1; normalise the whole filter to `up`.
    h *= up / h.sum()
    return h, half


# --- levels ----------------------------------------------------------------


def duration_s(samples: npt.ArrayLike, sample_rate: int) -> float:
    return float(np.asarray(samples).shape[0]) / float(sample_rate)


def rms(samples: npt.ArrayLike) -> float:
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(x * x)))


def to_dbfs(level: float) -> float:
    """dBFS of an RMS level (a full-scale square wave is 0 dBFS); -inf for 0."""
    return 20.0 * math.log10(level) if level > 0 else -math.inf


def rms_dbfs(samples: npt.ArrayLike) -> float:
    return to_dbfs(rms(samples))


def peak_frame_dbfs(samples: npt.ArrayLike, sample_rate: int, frame_s: float = 0.02) -> float:
    """Level of the loudest frame (RMS over ``frame_s``), in dBFS.

    A frame-wise peak rather than the whole-file RMS, so a short "喂？" in a
    long silent message still counts as speech.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        return -math.inf
    frame = max(1, round(sample_rate * frame_s))
    usable = x.size - x.size % frame
    if usable == 0:
        return rms_dbfs(x)
    energy = np.mean(x[:usable].reshape(-1, frame) ** 2, axis=1)
    return to_dbfs(float(np.sqrt(energy.max())))


def is_silent(
    samples: npt.ArrayLike, sample_rate: int, threshold_dbfs: float = DEFAULT_SILENCE_THRESHOLD_DBFS
) -> bool:
    return peak_frame_dbfs(samples, sample_rate) < threshold_dbfs


def check_not_silent(
    audio: Audio, *, name: str, threshold_dbfs: float = DEFAULT_SILENCE_THRESHOLD_DBFS
) -> None:
    """Raise :class:`SilentAudio` when no 20 ms frame reaches ``threshold_dbfs``."""
    peak = peak_frame_dbfs(audio.samples, audio.sample_rate)
    if peak < threshold_dbfs:
        raise SilentAudio(name, audio.duration_s, peak, threshold_dbfs)


def to_pcm16(samples: npt.ArrayLike) -> bytes:
    """Float samples to 16-bit signed little-endian bytes (what Kaldi takes)."""
    x = np.clip(np.asarray(samples, dtype=np.float64) * 32768.0, -32768, 32767)
    return np.rint(x).astype("<i2").tobytes()


def load_for_model(
    path: str | Path,
    model_rate: int,
    *,
    silence_threshold_dbfs: float | None = DEFAULT_SILENCE_THRESHOLD_DBFS,
    sox_binary: str | None = "sox",
) -> tuple[Audio, bytes]:
    """Read, check and resample a recording: (the audio as read, PCM16 at ``model_rate``)."""
    audio = read_audio(path, sox_binary=sox_binary)
    if silence_threshold_dbfs is not None:
        check_not_silent(audio, name=str(path), threshold_dbfs=silence_threshold_dbfs)
    return audio, to_pcm16(resample(audio.samples, audio.sample_rate, model_rate))
