"""_payload and the mu-law it reaches, checked against the stdlib audioop reference."""

from __future__ import annotations

import base64
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hana_voice.audio.mulaw import decode as mulaw_decode
from hana_voice.audio.mulaw import encode as mulaw_encode
from hana_voice.audio.wav import write_wav
from hana_voice.errors import ProtocolError
from hana_voice.protocols._payload import (
    decode_base64_mulaw,
    encode_base64_mulaw_chunks,
    wav_to_pcm,
)

with warnings.catch_warnings():
    # audioop is deprecated (gone in 3.13) but is still the reference G.711 of Python 3.11.
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


def test_decode_matches_audioop_for_every_code() -> None:
    codes = bytes(range(256))
    assert mulaw_decode(codes) == audioop.ulaw2lin(codes, 2)


@given(st.binary(max_size=512).map(lambda b: b[: len(b) // 2 * 2]))
def test_encode_matches_audioop(pcm: bytes) -> None:
    assert mulaw_encode(pcm) == audioop.lin2ulaw(pcm, 2)


@given(st.binary(max_size=1000), st.integers(min_value=1, max_value=400))
def test_chunks_concatenate_to_the_whole(ulaw: bytes, per_chunk: int) -> None:
    pcm = mulaw_decode(ulaw)
    chunks = encode_base64_mulaw_chunks(pcm, per_chunk)
    assert all(len(base64.b64decode(c)) <= per_chunk for c in chunks)
    joined = b"".join(base64.b64decode(c) for c in chunks)
    assert joined == ulaw.replace(b"\x7f", b"\xff")


@pytest.mark.parametrize("payload", ["@@@@", "AAA", "AA==AA==", "مرحبا", "A A="])
def test_invalid_base64_is_bad_audio(payload: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_base64_mulaw(payload, "data.audio")
    assert (caught.value.code, caught.value.fatal) == ("bad_audio", False)


def test_wav_round_trip_and_refusals() -> None:
    assert wav_to_pcm(write_wav(b"\x01\x02\x03\x04", 8000)) == (b"\x01\x02\x03\x04", 8000)
    with pytest.raises(ProtocolError, match="not a readable PCM WAV"):
        wav_to_pcm(b"RIFF....WAVEfmt ")
    with pytest.raises(ProtocolError, match="16-bit mono"):
        wav_to_pcm(_stereo_wav())


def _stereo_wav() -> bytes:
    import io
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(2)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(bytes(8))
    return buffer.getvalue()
