"""The fake engines behave like the Protocols promise, so dialog tests can trust them."""

from __future__ import annotations

from hana_voice.engines.base import Recognizer, SpeechToText, TextToSpeech
from hana_voice.engines.fake import (
    FakeSpeechToText,
    FakeTextToSpeech,
    silence,
    tone,
    utterance,
)

RATE = 16000


def feed(rec: Recognizer, audio: bytes, chunk_ms: int = 20) -> list[str]:
    step = 2 * rec.sample_rate * chunk_ms // 1000
    return [t.text for i in range(0, len(audio), step) if (t := rec.accept(audio[i : i + step]))]


def test_fakes_implement_the_protocols() -> None:
    stt: SpeechToText = FakeSpeechToText()
    tts: TextToSpeech = FakeTextToSpeech()
    assert isinstance(stt.create_recognizer(RATE), Recognizer)
    assert tts.sample_rate == RATE


def test_each_utterance_ends_with_the_next_scripted_text() -> None:
    stt = FakeSpeechToText(["نعم", "لا"])
    rec = stt.create_recognizer(RATE)
    assert feed(rec, utterance(RATE) + utterance(RATE) + utterance(RATE)) == ["نعم", "لا", ""]


def test_silence_and_clicks_are_not_utterances() -> None:
    stt = FakeSpeechToText(["نعم"])
    rec = stt.create_recognizer(8000)
    assert feed(rec, silence(1000, 8000) + tone(50, 8000) + silence(1000, 8000)) == []
    assert rec.finish().text == ""
    assert stt.peek() == "نعم"


def test_speech_needs_the_trailing_silence_or_a_flush() -> None:
    stt = FakeSpeechToText(["نعم صحيح"], confidence=0.7)
    rec = stt.create_recognizer(RATE)
    assert feed(rec, tone(400, RATE) + silence(100, RATE)) == []
    assert rec.partial().text == "نعم"
    final = rec.finish()
    assert (final.text, final.final, final.confidence) == ("نعم صحيح", True, 0.7)
    assert [w.word for w in final.words] == ["نعم", "صحيح"]


def test_texts_can_be_queued_later_and_survive_odd_chunking() -> None:
    stt = FakeSpeechToText()
    rec = stt.create_recognizer(8000)
    stt.say("واحد")
    assert feed(rec, utterance(8000), chunk_ms=7) == ["واحد"]


def test_phrases_are_recorded_only_with_grammar_support() -> None:
    assert FakeSpeechToText().create_recognizer(RATE, ["a"]).phrases == ["a"]
    assert FakeSpeechToText(supports_grammar=False).create_recognizer(RATE, ["a"]).phrases is None


def test_tts_tone_length_is_proportional_to_text() -> None:
    tts = FakeTextToSpeech(sample_rate=8000, ms_per_char=10, chunk_ms=20)
    chunks = list(tts.synthesize("x" * 100))  # one second
    assert sum(len(c) for c in chunks) == 2 * 8000
    assert len(chunks) == 50
    assert list(tts.synthesize("")) == []
    assert tts.texts == ["x" * 100, ""]
