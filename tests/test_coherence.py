"""Welch coherence pooled over trials, against scipy.signal.coherence, a hand-made Welch
average, the notes' K = 63 -> K_eff = 59.7 (Hann, 50% overlap, rho = 1/6), and the
false-positive rate of the threshold on independent white noise."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from corrlab.analysis.coherence import effective_segments, overlap_correlations, welch_coherence
from corrlab.errors import PlanError


def _hand_welch(trials_a, trials_b, nperseg, noverlap):
    """Periodic Hann, constant detrend, every segment of every trial, plain average."""
    n = np.arange(nperseg)
    w = 0.5 - 0.5 * np.cos(2 * np.pi * n / nperseg)
    hop = nperseg - noverlap
    sab = saa = sbb = 0.0
    for a, b in zip(trials_a, trials_b):
        for start in range(0, len(a) - nperseg + 1, hop):
            fa = np.fft.rfft(w * (a[start:start + nperseg] - a[start:start + nperseg].mean()))
            fb = np.fft.rfft(w * (b[start:start + nperseg] - b[start:start + nperseg].mean()))
            sab = sab + np.conj(fa) * fb
            saa = saa + np.abs(fa) ** 2
            sbb = sbb + np.abs(fb) ** 2
    return np.abs(sab) ** 2 / (saa * sbb)


def test_single_trial_equals_scipy_coherence():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, 5000))
    y = y + 0.3 * x
    res = welch_coherence(x, y, fs=200.0, nperseg=256)
    f, c = signal.coherence(x, y, fs=200.0, nperseg=256)
    np.testing.assert_allclose(res.frequencies, f)
    np.testing.assert_allclose(res.coherence, c, rtol=1e-10, atol=1e-14)


def test_trials_are_pooled_segment_by_segment():
    rng = np.random.default_rng(1)
    lengths = [1000, 700, 1000, 300]  # unequal trials; segments never cross a trial boundary
    a = [rng.standard_normal(n) for n in lengths]
    b = [0.4 * s + rng.standard_normal(s.size) for s in a]
    res = welch_coherence(a, b, nperseg=128, noverlap=64)
    np.testing.assert_allclose(res.coherence, _hand_welch(a, b, 128, 64), rtol=1e-9)
    assert res.n_segments == sum(1 + (n - 128) // 64 for n in lengths)
    assert res.n_trials == 4


def test_overlap_correlation_and_effective_segments_closed_forms():
    rho = overlap_correlations("hann", 256, 128)
    assert rho.shape == (1,) and rho[0] == pytest.approx(1 / 6, rel=1e-12)
    assert effective_segments([63], rho) == pytest.approx(59.7, abs=0.05)
    assert effective_segments([63], rho) == pytest.approx(63 / (1 + 2 * (1 / 36) * 62 / 63), rel=1e-12)
    # no overlap: independent segments
    assert overlap_correlations("hann", 256, 0).size == 0
    assert effective_segments([40], []) == 40
    # boxcar at 50%: rho = 1/2
    box = overlap_correlations("boxcar", 100, 50)
    assert box[0] == pytest.approx(0.5)
    # segments of different trials are independent: two trials of 10 segments
    assert effective_segments([10, 10], rho) == pytest.approx(20**2 / (20 + 2 * 2 * 9 / 36), rel=1e-12)
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((2, 256 + 62 * 128))
    res = welch_coherence(x, y, nperseg=256)
    assert res.n_segments == 63 and res.k_eff == pytest.approx(59.73, abs=0.01)
    assert res.threshold == pytest.approx(1 - 0.05 ** (1 / (res.k_eff - 1)))
    assert res.threshold_uncorrected == pytest.approx(1 - 0.05 ** (1 / 62))


def _white_noise_fpr(replicates, shape, nperseg, seed):
    rng = np.random.default_rng(seed)
    corrected = uncorrected = bins = 0
    for _ in range(replicates):
        x = rng.standard_normal(shape)
        y = rng.standard_normal(shape)
        res = welch_coherence(x, y, nperseg=nperseg)
        c = res.coherence[1:-1]  # DC and Nyquist are real-valued bins with another law
        corrected += np.sum(c > res.threshold)
        uncorrected += np.sum(c > res.threshold_uncorrected)
        bins += c.size
    return corrected / bins, uncorrected / bins, bins


def test_threshold_false_positive_rate_on_white_noise():
    # K = 63 (Hann, 50%): with K the rate is about 5.8%, with K_eff about 5.0%
    fpr, fpr_k, bins = _white_noise_fpr(300, 256 + 62 * 128, 256, 3)
    se = 2 * np.sqrt(0.05 * 0.95 / bins)  # x2: neighbouring Hann bins are correlated
    assert abs(fpr - 0.05) <= 3 * se
    assert fpr_k > 0.05 + 3 * se
    assert fpr_k > fpr


def test_threshold_false_positive_rate_with_many_trials():
    fpr, fpr_k, bins = _white_noise_fpr(150, (8, 2048), 256, 4)
    se = 2 * np.sqrt(0.05 * 0.95 / bins)
    assert abs(fpr - 0.05) <= 3 * se
    assert fpr_k > fpr


def test_a_common_tone_is_detected():
    rng = np.random.default_rng(5)
    fs, f0 = 1000.0, 125.0
    t = np.arange(4096)[None, :] / fs
    tone = np.sin(2 * np.pi * f0 * t + rng.uniform(0, 2 * np.pi, (6, 1)))  # a random phase per trial
    a = tone + 3 * rng.standard_normal(tone.shape)
    b = 0.5 * tone + 3 * rng.standard_normal(tone.shape)
    res = welch_coherence(a, b, fs=fs, nperseg=256)
    peak = np.argmin(np.abs(res.frequencies - f0))
    assert res.significant[peak] and res.coherence[peak] > 5 * res.threshold
    assert res.pvalues[peak] < 1e-10
    assert np.mean(res.significant) < 0.1  # and little else
    assert "125" in res.summary()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(xa=np.ones(100), xb=np.ones(100), nperseg=256), "at least 256"),
        (dict(xa=np.ones(300), xb=np.ones(300), nperseg=256, noverlap=256), "noverlap"),
        (dict(xa=np.ones((2, 300)), xb=np.ones((3, 300)), nperseg=128), "trials"),
        (dict(xa=np.ones(300), xb=np.ones(300), nperseg=128, fs=0), "fs"),
        (dict(xa=np.ones(300), xb=np.ones(300), nperseg=128, alpha=1.5), "alpha"),
        (dict(xa=np.ones(300), xb=np.ones(300), nperseg=128, window="nonsense"), "window"),
        (dict(xa=np.ones(256), xb=np.ones(256), nperseg=256), "too few segments"),
    ],
)
def test_bad_input(kwargs, message):
    with pytest.raises(PlanError, match=message):
        welch_coherence(**kwargs)
