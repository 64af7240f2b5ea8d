from __future__ import annotations

import contextlib
import io

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hana_voice.audio.decode import decode_utterance, sniff_container
from hana_voice.audio.wav import write_wav
from hana_voice.errors import AudioError
from tests.audio.signals import peak_frequency, to_pcm, tone


def encode(
    container: str, codec: str, signal: np.ndarray, rate: int, layout: str = "mono"
) -> bytes:
    """Encode with ffmpeg through PyAV, as a browser's MediaRecorder would (WebM/Opus)."""
    samples = np.clip(np.rint(signal * 32767), -32768, 32767).astype(np.int16)
    channels = 2 if layout == "stereo" else 1
    interleaved = np.repeat(samples, channels)[None, :]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        assert isinstance(stream, av.AudioStream)
        for start in range(0, len(samples), 960):
            chunk = interleaved[:, start * channels : (start + 960) * channels]
            frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout=layout)
            frame.sample_rate, frame.pts = rate, start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def webm_opus() -> bytes:
    return encode("webm", "libopus", tone(440, 1.0, 48000), 48000)


@pytest.mark.parametrize("target_rate", [8000, 16000])
def test_webm_opus_tone_survives(webm_opus: bytes, target_rate: int) -> None:
    assert sniff_container(webm_opus) == "webm"
    pcm = decode_utterance(webm_opus, target_rate)
    assert len(pcm) / 2 / target_rate == pytest.approx(1.0, abs=0.03)
    assert peak_frequency(pcm, target_rate) == pytest.approx(440, abs=3)


def test_ogg_opus_stereo() -> None:
    data = encode("ogg", "libopus", tone(1000, 0.5, 48000), 48000, layout="stereo")
    assert sniff_container(data) == "ogg"
    pcm = decode_utterance(data, 16000)
    assert len(pcm) / 2 / 16000 == pytest.approx(0.5, abs=0.03)
    assert peak_frequency(pcm, 16000) == pytest.approx(1000, abs=5)


def test_unsniffed_container_goes_to_ffmpeg() -> None:
    data = encode("flac", "flac", tone(700, 0.5, 22050), 22050)
    assert sniff_container(data) is None
    assert peak_frequency(decode_utterance(data, 8000), 8000) == pytest.approx(700, abs=5)


def test_wav_is_read_and_resampled() -> None:
    data = write_wav(to_pcm(tone(500, 0.5, 44100)), 44100)
    pcm = decode_utterance(data, 16000)
    assert len(pcm) == 2 * 8000
    assert peak_frequency(pcm, 16000) == pytest.approx(500, abs=3)


def test_length_cap(webm_opus: bytes) -> None:
    with pytest.raises(AudioError, match=r"past 0\.5 s"):
        decode_utterance(webm_opus, 16000, max_seconds=0.5)
    with pytest.raises(AudioError, match=r"over 0\.1 s"):
        decode_utterance(write_wav(bytes(4000), 16000), 16000, max_seconds=0.1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty audio"),
        (b"\x1a\x45\xdf\xa3 not really webm", "cannot decode webm audio"),
        (b"OggS" + bytes(60), "cannot decode ogg audio"),
        (b"hello, not audio", "cannot decode unrecognised audio"),
    ],
)
def test_bad_input(data: bytes, message: str) -> None:
    with pytest.raises(AudioError, match=message):
        decode_utterance(data, 16000)


def test_truncated_webm(webm_opus: bytes) -> None:
    # A cut inside the header leaves nothing to decode; a cut halfway keeps what came before it.
    for cut in (8, 40):
        with pytest.raises(AudioError):
            decode_utterance(webm_opus[:cut], 16000)
    pcm = decode_utterance(webm_opus[: len(webm_opus) // 2], 16000)
    assert 0 < len(pcm) < 2 * 16000  # what survived the cut, never more


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([b"", b"RIFF\x00\x00\x00\x00WAVE", b"\x1a\x45\xdf\xa3", b"OggS"]),
    st.binary(max_size=300),
)
def test_random_bytes_raise_only_audio_error(prefix: bytes, tail: bytes) -> None:
    with contextlib.suppress(AudioError):
        decode_utterance(prefix + tail, 16000, max_seconds=5)


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_corrupted_webm_raises_only_audio_error(webm_opus: bytes, data: st.DataObject) -> None:
    corrupted = bytearray(webm_opus)
    for _ in range(data.draw(st.integers(1, 20))):
        corrupted[data.draw(st.integers(0, len(corrupted) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(AudioError):
        decode_utterance(bytes(corrupted), 16000)
