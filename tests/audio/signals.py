"""Generated test signals: tones, a speech-like voiced signal, telephony noise."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]


def tone(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> Floats:
    t = np.arange(round(seconds * rate)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


def to_pcm(signal: Floats) -> bytes:
    return np.clip(np.rint(signal * 32768), -32768, 32767).astype("<i2").tobytes()


def voiced(seconds: float, rate: int, seed: int = 0) -> Floats:
    """A harmonic series on a gliding 120-180 Hz pitch, shaped by two formant-like peaks and
    modulated at a syllable rate of 4 Hz: enough like speech for energy and GMM detectors."""
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    t = np.arange(n) / rate
    f0 = 150 + 30 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    signal = np.zeros(n)
    for harmonic in range(1, 25):
        freq = harmonic * 150
        if freq > rate / 2 - 200:
            break
        formants = np.exp(-(((freq - 600) / 250) ** 2)) + 0.6 * np.exp(
            -(((freq - 1500) / 400) ** 2)
        )
        signal += (0.05 + formants) / harmonic**0.5 * np.sin(harmonic * phase)
    syllables = 0.55 - 0.45 * np.cos(2 * np.pi * 4 * t)
    signal *= syllables
    result: Floats = 0.3 * signal / np.max(np.abs(signal))
    return result


def line_noise(seconds: float, rate: int, dbfs: float, seed: int = 1) -> Floats:
    """Band-limited (300-3400 Hz) white noise at the given RMS level."""
    n = round(seconds * rate)
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / rate)
    noise = np.fft.irfft(spectrum * ((freqs > 300) & (freqs < 3400)), n)
    result: Floats = noise / np.sqrt(np.mean(noise**2)) * 10 ** (dbfs / 20)
    return result


def peak_frequency(pcm: bytes, rate: int) -> float:
    samples = np.frombuffer(pcm, "<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))
