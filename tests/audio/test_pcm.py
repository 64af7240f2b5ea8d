from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hana_voice.audio.pcm import (
    duration_seconds,
    float32_to_pcm16,
    pcm16_samples,
    pcm16_to_float32,
    silence,
)
from hana_voice.errors import AudioError


def test_odd_byte_count_is_an_audio_error() -> None:
    with pytest.raises(AudioError, match="even number of bytes, got 3"):
        pcm16_samples(b"abc")
    with pytest.raises(AudioError):
        pcm16_to_float32(b"a")


def test_scale_and_clipping() -> None:
    samples = pcm16_to_float32(np.array([-32768, 0, 16384], "<i2").tobytes())
    assert samples.dtype == np.float32
    assert samples.tolist() == [-1.0, 0.0, 0.5]
    clipped = np.frombuffer(float32_to_pcm16([2.0, -2.0, float("nan"), 1.0]), "<i2")
    assert clipped.tolist() == [32767, -32768, 0, 32767]


def test_duration_and_silence() -> None:
    assert duration_seconds(silence(0.02, 8000), 8000) == pytest.approx(0.02)
    assert silence(0.02, 8000) == bytes(320)


@given(st.binary(max_size=2000).map(lambda b: b[: len(b) // 2 * 2]))
def test_pcm_float_round_trip_is_exact(pcm: bytes) -> None:
    assert float32_to_pcm16(pcm16_to_float32(pcm)) == pcm


@given(st.lists(st.floats(-1.0, 0.5, width=32), max_size=200))
def test_float_pcm_round_trip_within_half_a_step(values: list[float]) -> None:
    floats = np.array(values, dtype=np.float32)
    again = pcm16_to_float32(float32_to_pcm16(floats))
    assert np.all(np.abs(again - floats) <= 0.5 / 32768 + 1e-9)
