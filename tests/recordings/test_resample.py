"""The resampler keeps what is below the new Nyquist and removes what is above."""

from __future__ import annotations

import numpy as np
import pytest

from recordings.audio import resample
from tests.recordings.wavs import tone


def _spectrum(x: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    window = np.hanning(x.size)
    return np.fft.rfftfreq(x.size, 1 / rate), np.abs(np.fft.rfft(x * window))


def _level_db(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(x**2)) + 1e-20)


def test_1khz_tone_upsampled_8k_to_16k_keeps_frequency_and_level() -> None:
    x = tone(1000, 8000, 1.0)
    y = resample(x, 8000, 16000)
    assert y.dtype == np.float32
    assert y.size == 16000
    freqs, mags = _spectrum(y, 16000)
    assert freqs[mags.argmax()] == pytest.approx(1000, abs=1)
    # sample for sample, the ideal 16 kHz tone (edges excluded: zero padding)
    ideal = tone(1000, 16000, 1.0)
    assert np.max(np.abs(y[256:-256] - ideal[256:-256])) < 1e-4


def test_upsampling_leaves_no_spectral_image() -> None:
    # Zero-stuffing 8k -> 16k mirrors 3 kHz to 5 kHz unless the filter removes it.
    y = resample(tone(3000, 8000, 1.0), 8000, 16000)
    freqs, mags = _spectrum(y, 16000)
    image = mags[np.argmin(np.abs(freqs - 5000))]
    assert 20 * np.log10(image / mags.max()) < -70


def test_downsampling_suppresses_aliasing() -> None:
    # 6 kHz at 16 kHz would fold to 2 kHz at 8 kHz if taken every other sample.
    alias = resample(tone(6000, 16000, 1.0), 16000, 8000)
    naive = tone(6000, 16000, 1.0)[::2]
    assert _level_db(naive) > -10  # the naive way keeps it at full level
    assert _level_db(alias[100:-100]) - _level_db(tone(6000, 16000, 1.0)) < -70
    kept = resample(tone(1000, 16000, 1.0), 16000, 8000)
    assert _level_db(kept[100:-100]) == pytest.approx(_level_db(tone(1000, 8000, 1.0)), abs=0.05)


@pytest.mark.parametrize(
    ("src", "dst"), [(44100, 16000), (48000, 16000), (11025, 16000), (22050, 8000), (16000, 16000)]
)
def test_common_rates(src: int, dst: int) -> None:
    x = tone(700, src, 0.5)
    y = resample(x, src, dst)
    assert y.size == -(-x.size * dst // src)
    ideal = tone(700, dst, 0.5)[: y.size]
    assert np.max(np.abs(y[300:-300] - ideal[300 : y.size - 300])) < 1e-3


def test_dc_and_edge_cases() -> None:
    np.testing.assert_allclose(
        resample(np.full(4000, 0.25), 8000, 16000)[200:-200], 0.25, atol=1e-5
    )
    assert resample(np.zeros(0), 8000, 16000).size == 0
    assert resample(np.ones(1), 8000, 16000).size == 2
    with pytest.raises(ValueError):
        resample(np.zeros((2, 10)), 8000, 16000)
    with pytest.raises(ValueError):
        resample(np.zeros(10), 0, 16000)
