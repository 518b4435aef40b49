"""Reading recordings: real Asterisk output, other PCM layouts, and every bad file."""

from __future__ import annotations

import math
import pickle
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recordings.audio import (
    Audio,
    check_not_silent,
    is_silent,
    load_for_model,
    model_sample_rate,
    parse_wav,
    peak_frame_dbfs,
    read_audio,
    rms_dbfs,
    to_pcm16,
)
from recordings.errors import (
    AudioError,
    AudioFileNotFound,
    CorruptAudio,
    EmptyAudioFile,
    NotAWavFile,
    RecordingError,
    SilentAudio,
    TruncatedAudio,
    UnsupportedAudioFormat,
    ZeroLengthAudio,
)
from tests.recordings.wavs import KO_HELLO, VOICEMAIL, pcm16, tone, wav_bytes, write

needs_sox = pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed")


# --- good files ----------------------------------------------------------------


def test_reads_asterisk_voicemail_as_written_by_app_voicemail() -> None:
    audio = read_audio(VOICEMAIL)
    assert audio.sample_rate == 8000
    assert audio.source_channels == 1
    assert audio.source_format == "PCM 16-bit"
    assert audio.samples.dtype == np.float32
    assert audio.samples.shape == (70330,)
    assert audio.duration_s == pytest.approx(8.79125)
    # msg0000.txt says duration=8 (Asterisk rounds down)
    assert not is_silent(audio.samples, audio.sample_rate)


def test_voicemail_is_prepared_for_a_16khz_model() -> None:
    audio, pcm = load_for_model(VOICEMAIL, 16000)
    assert audio.sample_rate == 8000
    assert len(pcm) == 2 * 70330 * 2  # twice the samples, 2 bytes each
    resampled = np.frombuffer(pcm, "<i2").astype(np.float64) / 32768
    assert rms_dbfs(resampled) == pytest.approx(rms_dbfs(audio.samples), abs=0.2)


def test_samples_match_the_file_bytes_exactly() -> None:
    raw = KO_HELLO.read_bytes()
    audio = read_audio(KO_HELLO)
    data_at = raw.index(b"data") + 8
    expected = np.frombuffer(raw[data_at:], "<i2")
    assert np.array_equal(np.rint(audio.samples * 32768).astype(np.int16), expected)
    assert to_pcm16(audio.samples) == raw[data_at:]


def test_stereo_is_downmixed_to_mono(tmp_path: Path) -> None:
    left = tone(1000, 8000, 0.5, amplitude=0.8)
    right = np.zeros_like(left)
    interleaved = np.stack([left, right], axis=1).reshape(-1)
    path = write(tmp_path / "stereo.wav", wav_bytes(pcm16(interleaved), channels=2))
    audio = read_audio(path)
    assert audio.source_channels == 2
    assert audio.samples.shape == left.shape
    np.testing.assert_allclose(audio.samples, left / 2, atol=1e-4)


@pytest.mark.parametrize(
    ("bits", "tag", "encode"),
    [
        (8, 1, lambda x: np.clip(np.rint(x * 128 + 128), 0, 255).astype(np.uint8).tobytes()),
        (
            24,
            1,
            lambda x: b"".join(
                int(v).to_bytes(3, "little", signed=True) for v in np.rint(x * 8388607)
            ),
        ),
        (32, 1, lambda x: np.rint(x * 2147483647).astype("<i4").tobytes()),
        (32, 3, lambda x: x.astype("<f4").tobytes()),
        (64, 3, lambda x: x.astype("<f8").tobytes()),
    ],
    ids=["u8", "s24", "s32", "f32", "f64"],
)
def test_other_pcm_layouts_and_rates(tmp_path: Path, bits: int, tag: int, encode) -> None:
    x = tone(440, 22050, 0.2, amplitude=0.6)
    path = write(tmp_path / "x.wav", wav_bytes(encode(x), rate=22050, bits=bits, tag=tag))
    audio = read_audio(path)
    assert audio.sample_rate == 22050
    np.testing.assert_allclose(audio.samples, x, atol=1.0 / 120)


def test_wave_format_extensible_pcm(tmp_path: Path) -> None:
    x = tone(300, 16000, 0.1)
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 1, 16000, 32000, 2, 16, 22, 16, 4)
    fmt += struct.pack("<H", 1) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    payload = pcm16(x)
    body = (
        b"WAVEfmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(payload))
        + payload
    )
    audio = parse_wav(b"RIFF" + struct.pack("<I", len(body)) + body)
    assert audio.sample_rate == 16000
    np.testing.assert_allclose(audio.samples, x, atol=1e-4)


def test_unknown_chunks_before_data_are_skipped(tmp_path: Path) -> None:
    x = tone(500, 8000, 0.1)
    odd_chunk = b"LIST" + struct.pack("<I", 3) + b"abc" + b"\x00"  # odd size, padded
    audio = parse_wav(wav_bytes(pcm16(x), extra_chunks=odd_chunk))
    np.testing.assert_allclose(audio.samples, x, atol=1e-4)


@pytest.mark.parametrize("suffix", [".ulaw", ".pcm", ".alaw"])
def test_g711_raw_files_decode(tmp_path: Path, suffix: str) -> None:
    if shutil.which("sox") is None:
        pytest.skip("sox makes the G.711 reference")
    encoding = "a-law" if suffix == ".alaw" else "u-law"
    out = tmp_path / f"x{suffix}"
    subprocess.run(
        [
            "sox",
            str(KO_HELLO),
            "-t",
            "raw",
            "-e",
            encoding,
            "-b",
            "8",
            "-r",
            "8000",
            "-c",
            "1",
            str(out),
        ],
        check=True,
    )
    audio = read_audio(out)
    original = read_audio(KO_HELLO).samples
    assert audio.sample_rate == 8000
    assert audio.samples.shape == original.shape
    # G.711 is lossy (about 38 dB SNR for speech); it must track the original closely.
    noise = rms_dbfs(audio.samples - original) - rms_dbfs(original)
    assert noise < -30


def test_raw_signed_linear_sln(tmp_path: Path) -> None:
    x = tone(1000, 8000, 0.25)
    audio = read_audio(write(tmp_path / "m.sln", pcm16(x)))
    assert audio.sample_rate == 8000
    np.testing.assert_allclose(audio.samples, x, atol=1e-4)
    assert read_audio(write(tmp_path / "m.sln16", pcm16(x))).sample_rate == 16000


def test_mulaw_wav_matches_raw_decoding(tmp_path: Path) -> None:
    codes = bytes(range(256))
    audio = read_audio(write(tmp_path / "u.wav", wav_bytes(codes, bits=8, tag=7)))
    raw = read_audio(write(tmp_path / "u.ulaw", codes))
    assert np.array_equal(audio.samples, raw.samples)
    # ITU-T G.711: 0xFF and 0x7F are the two zeros, 0x00 is -32124, 0x80 is +32124
    assert audio.samples[0xFF] == 0 and audio.samples[0x7F] == 0
    assert audio.samples[0x00] * 32768 == -32124 and audio.samples[0x80] * 32768 == 32124
    alaw = read_audio(write(tmp_path / "a.wav", wav_bytes(codes, bits=8, tag=6))).samples * 32768
    assert alaw[0xD5] == 8 and alaw[0x55] == -8 and alaw[0xAA] == 32256 and alaw[0x2A] == -32256


# --- GSM through sox ---------------------------------------------------------------


def _gsm_files(tmp_path: Path) -> tuple[Path, Path]:
    gsm = tmp_path / "msg0000.gsm"
    wav49 = tmp_path / "msg0000.WAV"
    subprocess.run(["sox", str(KO_HELLO), str(gsm)], check=True)
    subprocess.run(
        ["sox", str(KO_HELLO), "-t", "wav", "-e", "gsm-full-rate", str(wav49)], check=True
    )
    return gsm, wav49


@needs_sox
def test_gsm_and_wav49_decode_through_sox(tmp_path: Path) -> None:
    gsm, wav49 = _gsm_files(tmp_path)
    assert struct.unpack_from("<H", wav49.read_bytes(), 20)[0] == 0x31  # really WAV49
    original = read_audio(KO_HELLO)
    for path in (gsm, wav49):
        audio = read_audio(path)
        assert audio.sample_rate == 8000
        assert "via sox" in audio.source_format
        # GSM works in 160-sample frames: same length give or take a frame
        assert abs(audio.samples.size - original.samples.size) <= 320
        n = min(audio.samples.size, original.samples.size)
        correlation = np.corrcoef(audio.samples[:n], original.samples[:n])[0, 1]
        assert correlation > 0.5


@needs_sox
@pytest.mark.parametrize("sox_binary", [None, "no-such-sox-binary"])
def test_gsm_without_sox_is_unsupported(tmp_path: Path, sox_binary: str | None) -> None:
    gsm, wav49 = _gsm_files(tmp_path)
    for path in (gsm, wav49):
        with pytest.raises(UnsupportedAudioFormat) as caught:
            read_audio(path, sox_binary=sox_binary)
        assert caught.value.error_id == "audio_unsupported_format"
        assert "sox" in caught.value.message_en
        assert "GSM" in caught.value.details["format"]


@needs_sox
def test_garbage_gsm_is_reported_corrupt_or_empty(tmp_path: Path) -> None:
    path = write(tmp_path / "junk.gsm", b"\x01\x02\x03")  # less than one 33-byte frame
    with pytest.raises((CorruptAudio, ZeroLengthAudio)):
        read_audio(path)


# --- bad files ------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioFileNotFound) as caught:
        read_audio(tmp_path / "nope.wav")
    assert caught.value.error_id == "audio_not_found"
    with pytest.raises(AudioFileNotFound):
        read_audio(tmp_path)  # a folder


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(EmptyAudioFile) as caught:
        read_audio(write(tmp_path / "e.wav", b""))
    assert caught.value.error_id == "audio_empty_file"
    assert "录音文件为空" in caught.value.message
    assert "empty" in caught.value.message


@pytest.mark.parametrize(
    "content",
    [
        b"hello, this is not audio at all\n" * 4,
        b"ID3\x03\x00" + bytes(200),
        b"RIFF\x10\x00\x00\x00AVI LIST",
    ],
    ids=["text", "mp3", "riff-avi"],
)
def test_not_a_wav(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(NotAWavFile) as caught:
        read_audio(write(tmp_path / "x.wav", content))
    assert caught.value.error_id == "audio_not_wav"
    assert caught.value.details["path"].endswith("x.wav")


def test_truncated_data_chunk(tmp_path: Path) -> None:
    raw = KO_HELLO.read_bytes()
    path = write(tmp_path / "cut.wav", raw[: len(raw) // 2])
    with pytest.raises(TruncatedAudio) as caught:
        read_audio(path)
    error = caught.value
    assert error.error_id == "audio_truncated"
    assert error.details["declared"] == len(raw) - 44
    assert error.details["available"] == len(raw) // 2 - 44
    assert "不完整" in error.message and "truncated" in error.message


@pytest.mark.parametrize("keep", [4, 11, 20, 30, 40])
def test_truncated_header(tmp_path: Path, keep: int) -> None:
    with pytest.raises(TruncatedAudio):
        read_audio(write(tmp_path / "cut.wav", KO_HELLO.read_bytes()[:keep]))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (wav_bytes(bytes(100), channels=0), "0 channels"),
        (wav_bytes(bytes(100), rate=0), "sample rate of 0"),
        (wav_bytes(bytes(100), block_align=3), "block align"),
        (wav_bytes(bytes(101)), "whole number"),
        (
            wav_bytes(
                bytes(100), extra_chunks=b"\x00\xff\x13\x37" + struct.pack("<I", 4) + bytes(4)
            ),
            "garbage chunk",
        ),
        (wav_bytes(bytes(100), data_size=0), "never finalised"),
        (
            b"RIFF" + struct.pack("<I", 16) + b"WAVEdata" + struct.pack("<I", 4) + bytes(4),
            "before the fmt",
        ),
        (b"RIFF" + struct.pack("<I", 16) + b"WAVELIST" + struct.pack("<I", 4) + bytes(4), "no fmt"),
    ],
    ids=[
        "no-channels",
        "no-rate",
        "block-align",
        "odd-size",
        "garbage-chunk",
        "unfinalised",
        "data-first",
        "no-fmt",
    ],
)
def test_corrupt(tmp_path: Path, data: bytes, reason: str) -> None:
    with pytest.raises(CorruptAudio) as caught:
        read_audio(write(tmp_path / "bad.wav", data))
    assert caught.value.error_id == "audio_corrupt"
    assert reason in caught.value.details["reason"]


def test_sizes_sox_cannot_fix_on_a_pipe_are_accepted_when_lenient() -> None:
    payload = pcm16(tone(400, 8000, 0.1))
    for declared in (0, 0x7FFFF000, 0xFFFFFFFF):
        data = wav_bytes(payload, data_size=declared)
        with pytest.raises((TruncatedAudio, CorruptAudio)):
            parse_wav(data)
        assert parse_wav(data, lenient_sizes=True).samples.size == 800


def test_unsupported_encoding_without_sox(tmp_path: Path) -> None:
    path = write(tmp_path / "adpcm.wav", wav_bytes(bytes(256), bits=4, tag=0x11, block_align=256))
    with pytest.raises(UnsupportedAudioFormat) as caught:
        read_audio(path, sox_binary=None)
    assert caught.value.details["format"] == "IMA ADPCM"


def test_zero_length(tmp_path: Path) -> None:
    with pytest.raises(ZeroLengthAudio) as caught:
        read_audio(write(tmp_path / "z.wav", wav_bytes(b"")))
    assert caught.value.error_id == "audio_zero_length"
    with pytest.raises(ZeroLengthAudio):
        read_audio(write(tmp_path / "z.sln", b"\x01"))


@pytest.mark.parametrize("level", [0.0, 1e-4], ids=["digital-zero", "line-hiss"])
def test_silent_recording(tmp_path: Path, level: float) -> None:
    rng = np.random.default_rng(7)
    x = level * rng.standard_normal(8000 * 3)
    path = write(tmp_path / "s.wav", wav_bytes(pcm16(x)))
    audio = read_audio(path)
    assert is_silent(audio.samples, 8000)
    with pytest.raises(SilentAudio) as caught:
        check_not_silent(audio, name=str(path))
    error = caught.value
    assert error.error_id == "audio_silent"
    assert error.details["duration_s"] == 3.0
    assert "静音" in error.message
    with pytest.raises(SilentAudio):
        load_for_model(path, 16000)
    load_for_model(path, 16000, silence_threshold_dbfs=None)  # check can be switched off


def test_a_short_word_in_long_silence_is_not_silent() -> None:
    x = np.zeros(8000 * 10)
    x[40000:40800] = tone(500, 8000, 0.1, amplitude=0.1)
    assert not is_silent(x, 8000)
    assert rms_dbfs(x) < -40  # the whole-file RMS alone would have called it silent
    assert peak_frame_dbfs(x, 8000) == pytest.approx(20 * math.log10(0.1 / math.sqrt(2)), abs=0.2)


def test_errors_pickle_with_their_details() -> None:
    error = TruncatedAudio("/x.wav", "cut", declared=10, available=5)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is TruncatedAudio
    assert copy.error_id == "audio_truncated"
    assert copy.details == error.details
    assert str(copy) == str(error) == error.message
    assert copy.to_json() == {
        "error": "audio_truncated",
        "message": error.message,
        "details": error.details,
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mangled_headers_raise_only_audio_errors(data: st.DataObject) -> None:
    original = bytearray(KO_HELLO.read_bytes()[:400])
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, 60))
        original[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(original)))
    try:
        audio = parse_wav(bytes(original[:cut]))
    except AudioError as error:
        assert isinstance(error, RecordingError) and error.error_id.startswith("audio_")
    else:
        assert isinstance(audio, Audio) and audio.samples.size > 0 and audio.sample_rate > 0


# --- model rate ------------------------------------------------------------------


def test_model_sample_rate_from_conf(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    assert model_sample_rate(tmp_path) == 16000  # nothing says: Vosk's default
    (tmp_path / "conf" / "model.conf").write_text("--beam=10\n--sample-frequency=8000\n")
    assert model_sample_rate(tmp_path) == 8000
    (tmp_path / "conf" / "mfcc.conf").write_text("--use-energy=false\n--sample-frequency=16000.0\n")
    assert model_sample_rate(tmp_path) == 16000  # mfcc.conf wins
    assert model_sample_rate(tmp_path / "missing") == 16000
