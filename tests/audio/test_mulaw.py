"""G.711 mu-law against a reference built here from the standard's segment table."""

from __future__ import annotations

import av
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hana_voice.audio import mulaw
from hana_voice.errors import AudioError

# G.711 Table 2a: segment s (0-7) covers biased 14-bit magnitudes [32 << s, 64 << s), in 16
# steps of 2 << s. A code is sign(1 = negative) | segment(3) | step(4), sent with all bits inverted;
# the decoder answers the middle of the step.
SEGMENT_STARTS = [32 << s for s in range(8)]


def reference_encode(sample: int) -> int:
    negative = sample < 0
    # 16-bit input carries two bits below G.711's 14-bit resolution; g711.c floors them away.
    magnitude = -(sample >> 2) if negative else sample >> 2
    biased = min(magnitude, 8159) + 33
    segment = max(s for s in range(8) if SEGMENT_STARTS[s] <= min(biased, 8191))
    step = min((biased - SEGMENT_STARTS[segment]) // (2 << segment), 15)
    sign = 0x80 if negative else 0
    return ~(sign | (segment << 4) | step) & 0xFF


def reference_decode(code: int) -> int:
    inverted = ~code & 0xFF
    segment = (inverted >> 4) & 7
    step = inverted & 0x0F
    # Middle of the step in biased 14-bit units, unbiased, then scaled to 16 bits.
    magnitude = (SEGMENT_STARTS[segment] + step * (2 << segment) + (1 << segment) - 33) * 4
    return -magnitude if inverted & 0x80 else magnitude


def test_decode_matches_reference_for_all_256_codes() -> None:
    decoded = np.frombuffer(mulaw.decode(bytes(range(256))), "<i2")
    assert decoded.tolist() == [reference_decode(code) for code in range(256)]


def test_encode_matches_reference_for_all_65536_samples() -> None:
    samples = np.arange(-32768, 32768, dtype="<i2")
    encoded = np.frombuffer(mulaw.encode(samples.tobytes()), np.uint8)
    assert encoded.tolist() == [reference_encode(int(s)) for s in samples]


def test_decode_matches_ffmpeg_pcm_mulaw() -> None:
    """A second, independent decoder: ffmpeg's through PyAV. (ffmpeg's *encoder* picks the
    nearest decoded level instead of G.711's decision thresholds, so it differs near segment
    edges and is not a reference for encoding.)"""
    decoder = av.CodecContext.create("pcm_mulaw", "r")
    decoder.sample_rate, decoder.layout = 8000, "mono"
    frames = decoder.decode(av.Packet(bytes(range(256))))
    assert frames[0].to_ndarray().reshape(-1).astype("<i2").tobytes() == mulaw.decode(
        bytes(range(256))
    )


def test_known_values() -> None:
    assert mulaw.encode(b"\x00\x00") == bytes([mulaw.MULAW_SILENCE])
    assert np.frombuffer(mulaw.decode(b"\x00\x80"), "<i2").tolist() == [-32124, 32124]


def test_odd_pcm_is_an_audio_error() -> None:
    with pytest.raises(AudioError, match="even number"):
        mulaw.encode(b"\x00\x00\x01")


def test_empty_is_empty() -> None:
    assert mulaw.encode(b"") == b""
    assert mulaw.decode(b"") == b""


@given(st.lists(st.integers(-32768, 32767), max_size=400))
def test_round_trip_error_is_within_half_a_step(values: list[int]) -> None:
    samples = np.array(values, dtype=np.int16)
    decoded = np.frombuffer(mulaw.decode(mulaw.encode(samples.tobytes())), "<i2").astype(int)
    magnitude = np.minimum(np.abs(samples.astype(int)), 32635)
    # Steps double per segment: 8 (16-bit units) in segment 0, up to 1024 in segment 7.
    segment = np.clip(np.floor(np.log2(((magnitude + 3) >> 2) + 33)).astype(int) - 5, 0, 7)
    bound = (8 << segment) // 2 + 4  # half a step, plus the two bits dropped on input
    clipped = np.clip(samples.astype(int), -32635, 32635)
    assert np.all(np.abs(decoded - clipped) <= bound)


@given(st.binary(max_size=400))
def test_decode_then_encode_is_identity_except_negative_zero(codes: bytes) -> None:
    # 0x7F (-0) decodes to 0, which encodes as 0xFF (+0); every other code survives.
    again = mulaw.encode(mulaw.decode(codes))
    assert again == codes.replace(b"\x7f", b"\xff")
