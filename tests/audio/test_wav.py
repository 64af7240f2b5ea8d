from __future__ import annotations

import contextlib
import io
import struct
import wave

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hana_voice.audio import mulaw
from hana_voice.audio.wav import read_wav, write_wav
from hana_voice.errors import AudioError
from tests.audio.signals import to_pcm, tone


def riff(
    tag: int, channels: int, rate: int, bits: int, data: bytes, extensible: bool = False
) -> bytes:
    """A WAV file built by hand, for the layouts the stdlib wave module cannot write."""
    align = channels * bits // 8
    if extensible:
        guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt = struct.pack(
            "<HHIIHHHHI", 0xFFFE, channels, rate, rate * align, align, bits, 22, bits, 0
        )
        fmt += struct.pack("<H", tag) + guid_tail
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # odd-sized chunk with its pad byte
    chunks += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def stdlib_wav(rate: int, channels: int, width: int, frames: bytes) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(frames)
    return buffer.getvalue()


SIGNAL = tone(440, 0.1, 16000)
EXPECTED = np.frombuffer(to_pcm(SIGNAL), "<i2").astype(int)


def assert_close(pcm: bytes, tolerance: int) -> None:
    got = np.frombuffer(pcm, "<i2").astype(int)
    assert got.shape == EXPECTED.shape
    assert np.max(np.abs(got - EXPECTED)) <= tolerance


@pytest.mark.parametrize(
    ("width", "dtype", "scale", "offset", "tolerance"),
    [(1, np.uint8, 128, 128, 256), (2, "<i2", 32768, 0, 0), (4, "<i4", 2**31, 0, 1)],
)
def test_integer_pcm_stereo_is_downmixed(
    width: int, dtype: str, scale: int, offset: int, tolerance: int
) -> None:
    ints = np.clip(np.rint(SIGNAL * scale) + offset, -(2**31), 2**31 - 1).astype(dtype)
    stereo = np.stack([ints, ints], axis=1).tobytes()
    pcm, rate = read_wav(stdlib_wav(16000, 2, width, stereo))
    assert rate == 16000
    assert_close(pcm, tolerance)


def test_24_bit() -> None:
    ints = np.rint(SIGNAL * 2**23).astype("<i4")
    packed = np.frombuffer(ints.tobytes(), np.uint8).reshape(-1, 4)[:, :3].tobytes()
    pcm, _ = read_wav(stdlib_wav(16000, 1, 3, packed))
    assert_close(pcm, 1)


def test_float32_extensible_and_float64() -> None:
    floats = SIGNAL.astype("<f4").tobytes()
    assert_close(read_wav(riff(3, 1, 16000, 32, floats, extensible=True))[0], 1)
    assert_close(read_wav(riff(3, 1, 16000, 64, SIGNAL.astype("<f8").tobytes()))[0], 1)


def test_mulaw_wav() -> None:
    codes = mulaw.encode(to_pcm(SIGNAL))
    pcm, rate = read_wav(riff(7, 1, 8000, 8, codes))
    assert rate == 8000
    assert pcm == mulaw.decode(codes)


def test_opposite_channels_cancel() -> None:
    ints = np.rint(SIGNAL * 32767).astype("<i2")
    stereo = np.stack([ints, -ints], axis=1).tobytes()
    pcm, _ = read_wav(stdlib_wav(16000, 2, 2, stereo))
    assert np.max(np.abs(np.frombuffer(pcm, "<i2"))) <= 1


def test_truncated_data_keeps_whole_frames() -> None:
    data = stdlib_wav(8000, 2, 2, bytes(400))
    pcm, _ = read_wav(data[:-3])
    assert len(pcm) == 2 * 99  # 397 bytes hold 99 whole 4-byte frames


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "no RIFF/WAVE header"),
        (b"RIFF\x00\x00\x00\x00WAVE", "no fmt chunk"),
        (riff(2, 1, 8000, 4, b""), "format tag 0x0002 is not supported"),
        (riff(1, 1, 8000, 12, b""), "12 bits per sample"),
        (riff(1, 0, 8000, 16, b""), "0 channels"),
        (riff(1, 1, 10, 16, b""), "sample rate 10 Hz"),
    ],
)
def test_bad_files(data: bytes, message: str) -> None:
    with pytest.raises(AudioError, match=message):
        read_wav(data)


def test_too_long_is_refused() -> None:
    with pytest.raises(AudioError, match=r"over 1\.0 s"):
        read_wav(write_wav(bytes(2 * 8001), 8000), max_seconds=1.0)


def test_written_wav_is_standard() -> None:
    data = write_wav(to_pcm(SIGNAL), 16000)
    with wave.open(io.BytesIO(data)) as back:
        assert (back.getnchannels(), back.getsampwidth(), back.getframerate()) == (1, 2, 16000)
        assert back.readframes(back.getnframes()) == to_pcm(SIGNAL)


def test_write_rejects_odd_pcm() -> None:
    with pytest.raises(AudioError):
        write_wav(b"\x00", 8000)


@given(
    st.binary(max_size=1000).map(lambda b: b[: len(b) // 2 * 2]),
    st.sampled_from([8000, 16000, 22050, 24000, 44100, 48000]),
)
def test_write_read_round_trip(pcm: bytes, rate: int) -> None:
    assert read_wav(write_wav(pcm, rate)) == (pcm, rate)


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_audio_error(data: bytes) -> None:
    for candidate in (data, b"RIFF\x00\x00\x00\x00WAVE" + data):
        with contextlib.suppress(AudioError):
            read_wav(candidate)
