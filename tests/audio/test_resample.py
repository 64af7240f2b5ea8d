from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hana_voice.audio.resample import StreamResampler, resample
from hana_voice.errors import AudioError
from tests.audio.signals import peak_frequency, to_pcm, tone, voiced

RATES = [8000, 16000, 22050, 24000, 48000]
PAIRS = [(a, b) for a in RATES for b in RATES if a != b]


def stream(pcm: bytes, in_rate: int, out_rate: int, chunk_samples: int) -> bytes:
    resampler = StreamResampler(in_rate, out_rate)
    out = [
        resampler.process(pcm[i : i + 2 * chunk_samples])
        for i in range(0, len(pcm), 2 * chunk_samples)
    ]
    return b"".join(out) + resampler.flush()


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
def test_streaming_20ms_chunks_equals_one_shot(in_rate: int, out_rate: int) -> None:
    pcm = to_pcm(voiced(0.5, in_rate))
    streamed = np.frombuffer(stream(pcm, in_rate, out_rate, in_rate // 50), "<i2").astype(int)
    whole = np.frombuffer(resample(pcm, in_rate, out_rate), "<i2").astype(int)
    assert len(streamed) == len(whole) == round(len(pcm) / 2 * out_rate / in_rate)
    assert np.max(np.abs(streamed - whole)) <= 4  # rounding, not clicks (a click is thousands)


@pytest.mark.parametrize(("in_rate", "out_rate"), [(8000, 16000), (24000, 8000), (48000, 22050)])
def test_tone_survives(in_rate: int, out_rate: int) -> None:
    out = resample(to_pcm(tone(1000, 0.5, in_rate)), in_rate, out_rate)
    assert peak_frequency(out, out_rate) == pytest.approx(1000, abs=5)


def test_equal_rates_pass_through() -> None:
    pcm = to_pcm(tone(300, 0.05, 8000))
    assert resample(pcm, 8000, 8000) == pcm
    assert stream(pcm, 8000, 8000, 37) == pcm


def test_errors() -> None:
    with pytest.raises(AudioError, match="out of range"):
        StreamResampler(0, 8000)
    with pytest.raises(AudioError):
        resample(b"\x00", 8000, 16000)
    resampler = StreamResampler(8000, 16000)
    resampler.flush()
    assert resampler.flush() == b""
    with pytest.raises(AudioError, match="after flush"):
        resampler.process(b"\x00\x00")


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from(PAIRS),
    st.integers(0, 4000),
    st.lists(st.integers(1, 700), min_size=1, max_size=8),
)
def test_length_invariants(pair: tuple[int, int], samples: int, chunk_sizes: list[int]) -> None:
    in_rate, out_rate = pair
    pcm = np.random.default_rng(samples).integers(-3000, 3000, samples, dtype=np.int16).tobytes()
    expected = (samples * out_rate + in_rate // 2) // in_rate  # rounded half up, as soxr does
    assert len(resample(pcm, in_rate, out_rate)) == 2 * expected
    resampler = StreamResampler(in_rate, out_rate)
    out, at, turn = [], 0, 0
    while at < samples:
        size = chunk_sizes[turn % len(chunk_sizes)]
        out.append(resampler.process(pcm[2 * at : 2 * (at + size)]))
        at, turn = at + size, turn + 1
    total = sum(map(len, out)) + len(resampler.flush())
    assert abs(total // 2 - expected) <= 1
