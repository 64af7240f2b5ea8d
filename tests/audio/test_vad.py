from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hana_voice.audio import mulaw
from hana_voice.audio.vad import VadEvent, VoiceActivityDetector
from hana_voice.errors import AudioError
from hana_voice.events import SpeechEnded, SpeechStarted
from tests.audio.signals import line_noise, to_pcm, voiced


def utterance(rate: int, snr_db: float = 20.0, speech_s: float = 1.5) -> bytes:
    """1 s of line noise, ``speech_s`` of voiced signal at -20 dBFS-ish, 1.5 s of noise, mu-law."""
    speech = voiced(speech_s, rate)
    speech_dbfs = 10 * np.log10(np.mean(speech**2))
    lead = round(1.0 * rate)
    mix = line_noise(1.0 + speech_s + 1.5, rate, speech_dbfs - snr_db)
    mix[lead : lead + len(speech)] += speech
    pcm = to_pcm(mix)
    return mulaw.decode(mulaw.encode(pcm)) if rate == 8000 else pcm


def run(detector: VoiceActivityDetector, pcm: bytes, chunk_bytes: int) -> list[tuple[str, float]]:
    events: list[tuple[str, float]] = []
    for start in range(0, len(pcm), chunk_bytes):
        for event in detector.process(pcm[start : start + chunk_bytes]):
            events.append((type(event).__name__, detector.seconds_processed))
    return events


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("method", ["gated", "webrtc", "energy"])
def test_one_utterance_one_start_one_end(rate: int, method: str) -> None:
    detector = VoiceActivityDetector(rate, method=method)  # type: ignore[arg-type]
    events = run(detector, utterance(rate), 2 * rate // 50)
    if method == "webrtc":
        # WebRTC alone takes the first noise it hears for speech while its noise model is
        # untrained (one of the reasons for the energy gate): a start at 80 ms, over by 700 ms.
        assert events[:2] == [("SpeechStarted", 0.08), ("SpeechEnded", 0.68)]
        events = events[2:]
    assert [kind for kind, _ in events] == ["SpeechStarted", "SpeechEnded"]
    (_, started), (_, ended) = events
    assert 1.0 + 0.06 <= started <= 1.0 + 0.3  # onset: 80 ms of speech, plus a frame or two
    assert 2.5 + 0.5 <= ended <= 2.5 + 0.8  # hangover: 600 ms of silence after the speech


@pytest.mark.parametrize("rate", [22050, 24000, 48000, 11025])
def test_other_rates_are_resampled(rate: int) -> None:
    detector = VoiceActivityDetector(rate)
    assert detector.working_rate in (8000, 16000)
    events = run(
        detector, to_pcm(np.concatenate([np.zeros(rate), voiced(1.0, rate), np.zeros(rate)])), 1234
    )
    assert [kind for kind, _ in events] == ["SpeechStarted", "SpeechEnded"]


def test_low_snr_noise_never_holds_the_detector() -> None:
    """At 0 dB SNR WebRTC alone calls this noise speech for good; the gate must not."""
    noise = line_noise(20.0, 8000, -26.0, seed=5)
    pcm = mulaw.decode(mulaw.encode(to_pcm(noise)))
    assert run(VoiceActivityDetector(8000), pcm, 320) == []


def test_loud_noise_after_digital_silence_is_at_most_one_short_trigger() -> None:
    """Known limit (docs/vad.md): neither classifier has heard noise before it starts, so
    loud noise after digital silence can start one utterance; it must end, not hold."""
    pcm = bytes(2 * 8000 * 2) + to_pcm(line_noise(5.0, 8000, -45.0))
    events = run(VoiceActivityDetector(8000), pcm, 320)
    assert len(events) <= 2
    if events:
        assert events[1][1] - events[0][1] < 1.0
    quiet = bytes(2 * 8000 * 2) + to_pcm(line_noise(5.0, 8000, -60.0))
    assert run(VoiceActivityDetector(8000), quiet, 320) == []


def test_short_click_does_not_barge_in() -> None:
    signal = line_noise(2.0, 8000, -60.0)
    signal[8000 : 8000 + 400] += voiced(0.05, 8000)  # 50 ms burst, shorter than the onset
    assert run(VoiceActivityDetector(8000, onset_ms=80), to_pcm(signal), 320) == []


def test_finish_closes_an_open_utterance() -> None:
    detector = VoiceActivityDetector(16000)
    events = detector.process(to_pcm(np.concatenate([np.zeros(16000), voiced(1.0, 16000)])))
    assert events == [SpeechStarted()]
    assert detector.speaking
    assert detector.finish() == [SpeechEnded()]
    assert detector.finish() == []


def test_configuration_errors() -> None:
    with pytest.raises(ValueError, match="frame_ms"):
        VoiceActivityDetector(8000, frame_ms=25)
    with pytest.raises(ValueError, match="at least one frame"):
        VoiceActivityDetector(8000, onset_ms=5)
    with pytest.raises(ValueError, match="aggressiveness"):
        VoiceActivityDetector(8000, aggressiveness=4)
    with pytest.raises(AudioError):
        VoiceActivityDetector(8000).process(b"\x00")


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 900), min_size=1, max_size=6), st.sampled_from([10, 20, 30]))
def test_any_chunking_gives_the_same_events(chunk_sizes: list[int], frame_ms: int) -> None:
    pcm = utterance(8000, speech_s=1.0)
    reference = run(VoiceActivityDetector(8000, frame_ms=frame_ms), pcm, len(pcm))
    detector = VoiceActivityDetector(8000, frame_ms=frame_ms)
    events: list[VadEvent] = []
    at, turn = 0, 0
    while at < len(pcm):
        size = 2 * chunk_sizes[turn % len(chunk_sizes)]
        events += detector.process(pcm[at : at + size])
        at, turn = at + size, turn + 1
    assert [type(e).__name__ for e in events] == [kind for kind, _ in reference]
