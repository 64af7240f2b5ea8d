"""The trio wrappers: feeding, flushing, grammar switches, closing after a timeout, streaming."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import pytest
import trio

from hana_voice.engines.async_engines import (
    AsyncRecognizer,
    create_recognizer,
    synthesize_stream,
)
from hana_voice.engines.espeak_tts import load_espeak
from hana_voice.engines.fake import (
    FakeRecognizer,
    FakeSpeechToText,
    FakeTextToSpeech,
    silence,
    tone,
    utterance,
)
from hana_voice.engines.runner import EngineRunner
from hana_voice.engines.vosk_stt import VoskSpeechToText
from hana_voice.errors import EngineError, EngineTimeout
from hana_voice.events import Transcript

DEADLINE = 10.0
RATE = 8000


def make_runner(timeout: float = 5.0) -> EngineRunner:
    return EngineRunner(trio.CapacityLimiter(4), timeout)


async def feed_all(rec: AsyncRecognizer, audio: bytes, chunk_ms: int = 20) -> list[Transcript]:
    step = 2 * rec.sample_rate * chunk_ms // 1000
    out: list[Transcript] = []
    for i in range(0, len(audio), step):
        out += await rec.feed(audio[i : i + step])
    return out


async def test_feed_reports_changed_partials_then_the_final() -> None:
    stt = FakeSpeechToText(["yes please"])
    with trio.fail_after(DEADLINE):
        async with await create_recognizer(stt, make_runner(), RATE) as rec:
            events = await feed_all(rec, utterance(RATE))
    assert [(t.text, t.final) for t in events] == [("yes", False), ("yes please", True)]
    assert events[-1].confidence == pytest.approx(0.9)
    assert stt.recognizers[0].closed


async def test_finish_flushes_pending_speech_or_gives_none() -> None:
    stt = FakeSpeechToText(["no"])
    with trio.fail_after(DEADLINE):
        rec = await create_recognizer(stt, make_runner(), RATE)
        assert await rec.finish() is None
        await feed_all(rec, tone(400, RATE))
        final = await rec.finish()
        await rec.aclose()
    assert final is not None and final.text == "no" and final.final


async def test_phrases_reach_the_recogniser() -> None:
    stt = FakeSpeechToText()
    with trio.fail_after(DEADLINE):
        rec = await create_recognizer(stt, make_runner(), 16000, ("نعم", "لا"))
        seen = [stt.recognizers[0].phrases]
        await rec.set_phrases(["واحد"])
        seen.append(stt.recognizers[0].phrases)
        await rec.set_phrases(None)
        seen.append(stt.recognizers[0].phrases)
        await rec.aclose()
    assert seen == [["نعم", "لا"], ["واحد"], None]


async def test_closed_recogniser_refuses_calls_and_closes_once() -> None:
    stt = FakeSpeechToText()
    with trio.fail_after(DEADLINE):
        rec = await create_recognizer(stt, make_runner(), RATE)
        await rec.aclose()
        await rec.aclose()
        with pytest.raises(EngineError, match="closed"):
            await rec.feed(silence(20, RATE))
    assert stt.recognizers[0].closed


class GatedRecognizer(FakeRecognizer):
    """Blocks in ``accept`` until the test opens the gate: a hung engine call."""

    def __init__(self, stt: FakeSpeechToText) -> None:
        super().__init__(stt, RATE, None)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.closed_while_busy = False
        self.freed = threading.Event()
        self._busy = False

    def accept(self, pcm: bytes) -> Transcript | None:
        self._busy = True
        self.entered.set()
        self.gate.wait(timeout=DEADLINE)
        self._busy = False
        return super().accept(pcm)

    def close(self) -> None:
        self.closed_while_busy = self._busy
        super().close()
        self.freed.set()


async def test_close_after_a_timed_out_call_waits_for_the_abandoned_thread() -> None:
    gated = GatedRecognizer(FakeSpeechToText())
    rec = AsyncRecognizer(gated, make_runner(timeout=0.2))
    with trio.fail_after(DEADLINE):
        with pytest.raises(EngineTimeout):
            await rec.feed(silence(20, RATE))
        assert gated.entered.is_set()
        await rec.aclose()
        assert not gated.closed  # the abandoned thread still holds it
        gated.gate.set()
        assert await trio.to_thread.run_sync(gated.freed.wait, DEADLINE)
    assert not gated.closed_while_busy


async def test_close_from_a_cancelled_scope_still_frees() -> None:
    stt = FakeSpeechToText()
    with trio.fail_after(DEADLINE):
        rec = await create_recognizer(stt, make_runner(), RATE)
        with trio.CancelScope() as scope:
            scope.cancel()
            await rec.aclose()
    assert stt.recognizers[0].closed


async def test_synthesize_stream_yields_every_chunk() -> None:
    tts = FakeTextToSpeech(ms_per_char=50, chunk_ms=100)
    with trio.fail_after(DEADLINE):
        async with synthesize_stream(tts, make_runner(), "twenty characters!!!") as chunks:
            audio = b"".join([pcm async for pcm in chunks])
    assert len(audio) == 2 * tts.sample_rate * 1  # 20 chars x 50 ms
    assert tts.texts == ["twenty characters!!!"]


async def test_leaving_the_stream_early_stops_the_engine() -> None:
    tts = FakeTextToSpeech(ms_per_char=100, chunk_ms=100, chunk_delay_s=0.01)
    with trio.fail_after(DEADLINE):
        async with synthesize_stream(tts, make_runner(), "x" * 200) as chunks:
            async for _pcm in chunks:
                break  # a barge-in
        await trio.sleep(0.2)
    assert tts.chunks_produced < 10


async def test_engine_failure_in_the_stream_is_an_engine_error() -> None:
    tts = FakeTextToSpeech(fail_after_chunks=2)
    with trio.fail_after(DEADLINE):
        async with synthesize_stream(tts, make_runner(), "x" * 50) as chunks:
            with pytest.raises(EngineError, match="fake synthesis failed"):
                async for _pcm in chunks:
                    pass


# ---------------------------------------------------------------- real engines


@pytest.mark.slow
@pytest.mark.parametrize("rate", [8000, 16000])
async def test_real_vosk_through_the_runner(
    vosk_ko: VoskSpeechToText, korean_speech: Callable[[str, int], bytes], rate: int
) -> None:
    phrases: Sequence[str] = ["네", "아니요"]
    audio = korean_speech("아니요", rate)
    with trio.fail_after(DEADLINE):
        async with await create_recognizer(vosk_ko, make_runner(), rate, phrases) as rec:
            events = await feed_all(rec, audio)
            flushed = await rec.finish()
    finals = [t.text for t in events if t.final] + ([flushed.text] if flushed else [])
    assert finals == ["아니요"]
    assert any(not t.final for t in events)


async def test_real_espeak_through_the_runner() -> None:
    tts = load_espeak("ar")
    with trio.fail_after(DEADLINE):
        async with synthesize_stream(tts, make_runner(), "مَرْحَبًا بِكَ") as chunks:
            audio = b"".join([pcm async for pcm in chunks])
    assert len(audio) / 2 / tts.sample_rate > 0.5
