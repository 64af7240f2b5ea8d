"""The embedded espeak-ng synthesiser through the espeakng-loader wheel."""

from __future__ import annotations

import threading

import espeakng_loader
import numpy as np
import pytest

from hana_voice.engines import espeak_tts
from hana_voice.engines.base import TextToSpeech
from hana_voice.engines.espeak_tts import NATIVE_RATE, EspeakTextToSpeech, load_espeak
from hana_voice.errors import EngineError

SENTENCE = "مَرْحَبًا، كَيْفَ حَالُكَ الْيَوْمَ؟"


def audio_of(tts: EspeakTextToSpeech, text: str) -> np.ndarray:
    return np.frombuffer(b"".join(tts.synthesize(text)), dtype=np.int16)


def test_arabic_sentence_gives_speech_of_plausible_length() -> None:
    tts = load_espeak("ar")
    engine: TextToSpeech = tts  # mypy checks the Protocol here
    assert engine.name == "espeak"
    assert tts.sample_rate == NATIVE_RATE == 22050
    audio = audio_of(tts, SENTENCE)
    seconds = len(audio) / tts.sample_rate
    assert 1.0 < seconds < 6.0
    assert np.abs(audio).max() > 3000
    assert np.sqrt(np.mean(audio.astype(np.float64) ** 2)) > 300


def test_empty_and_blank_text_yield_nothing() -> None:
    tts = load_espeak("ar")
    assert list(tts.synthesize("")) == []
    assert list(tts.synthesize("  \n ")) == []


def test_long_text_streams_many_chunks() -> None:
    tts = load_espeak("ar")
    chunks = list(tts.synthesize(" ".join([SENTENCE] * 20)))
    assert len(chunks) > 20
    assert all(len(c) % 2 == 0 and c for c in chunks)
    assert sum(len(c) for c in chunks) / 2 / tts.sample_rate > 20


def test_rate_parameter_changes_duration() -> None:
    slow = audio_of(EspeakTextToSpeech("ar", rate=120), SENTENCE)
    fast = audio_of(EspeakTextToSpeech("ar", rate=300), SENTENCE)
    assert len(fast) < 0.7 * len(slow)


def test_missing_voice_is_an_engine_error() -> None:
    with pytest.raises(EngineError, match="no-such-voice"):
        load_espeak("no-such-voice")


def test_closing_early_stops_synthesis_and_frees_the_library() -> None:
    tts = load_espeak("ar")
    stream = tts.synthesize(" ".join([SENTENCE] * 50))
    first = next(stream)
    assert first
    stream.close()  # what the runner does on barge-in
    # The lock is free again: a new synthesis runs to completion.
    assert len(audio_of(tts, SENTENCE)) > 0


def test_concurrent_calls_are_serialised_and_all_correct() -> None:
    voices = {"ar": load_espeak("ar"), "ko": load_espeak("ko")}
    texts = {"ar": SENTENCE, "ko": "안녕하세요"}
    # Each voice alone, for comparison with what the threads get. espeak varies the length
    # by a few samples from run to run, so lengths are compared within 1 %; interleaved
    # syntheses would mix the two voices' audio and land far off both.
    expected = {v: len(audio_of(voices[v], texts[v])) for v in voices}
    assert expected["ar"] > 1.5 * expected["ko"]
    results: dict[int, int] = {}
    jobs = ["ar", "ko"] * 4

    def work(index: int) -> None:
        voice = jobs[index]
        results[index] = len(audio_of(voices[voice], texts[voice]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for index, voice in enumerate(jobs):
        assert results[index] == pytest.approx(expected[voice], rel=0.01)


def test_library_that_cannot_load_is_an_engine_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # A fresh process's state: no library yet, and a wheel whose library file is gone.
    monkeypatch.setattr(espeak_tts, "_library", None)
    monkeypatch.setattr(espeakng_loader, "get_library_path", lambda: "/nonexistent/libespeak.so")
    with pytest.raises(EngineError, match="could not be loaded"):
        load_espeak("ar")
