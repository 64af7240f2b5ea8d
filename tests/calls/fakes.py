"""Servers with fake engines (the real engines are tested on real models elsewhere)."""

from __future__ import annotations

from typing import Any, cast

from hana_voice.engines.fake import FakeSpeechToText, FakeTextToSpeech
from hana_voice.engines.manager import Loaders
from hana_voice.settings import Settings


def fake_loaders(
    stt: FakeSpeechToText | None = None, tts: FakeTextToSpeech | None = None
) -> tuple[Loaders, FakeSpeechToText, FakeTextToSpeech]:
    stt = stt or FakeSpeechToText()
    tts = tts or FakeTextToSpeech(ms_per_char=1.0, chunk_ms=20)

    def load_stt(settings: Settings) -> Any:
        return stt

    def load_tts(settings: Settings) -> Any:
        return tts

    loaders = Loaders(
        stt=cast(Any, load_stt),
        espeak=cast(Any, load_tts),
        xtts=cast(Any, load_tts),
        xtts_present=lambda s: False,
    )
    return loaders, stt, tts


def live(settings: Settings, **changes: Any) -> Settings:
    return settings.with_overrides(skip_model_loading=False, **changes)


def spoken(rate: int, seconds: float = 0.6, lead: float = 0.5, tail: float = 1.0) -> bytes:
    """Speech-like audio over quiet line noise, which the VAD and the fake recogniser take as
    one utterance: a noise lead-in (the VAD learns the floor), voiced sound, then silence."""
    import numpy as np

    from tests.audio.signals import line_noise, to_pcm, voiced

    signal = np.concatenate(
        [
            line_noise(lead, rate, -60),
            voiced(seconds, rate) + line_noise(seconds, rate, -60),
            line_noise(tail, rate, -60),
        ]
    )
    return to_pcm(signal)
