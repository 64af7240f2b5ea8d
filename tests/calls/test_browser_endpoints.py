"""The browser endpoints over a real server with fake engines: /ws, /ws/echo and /ws/tts in
the JSON dialect, the questionnaire's keypad shortcuts, and barge-in."""

from __future__ import annotations

import numpy as np
import trio

from hana_voice.audio import mulaw
from hana_voice.engines.fake import FakeTextToSpeech
from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders, live, spoken
from tests.calls.helpers import Timeline, engines_ready, stream, wait_prompt
from tests.conftest import run_server
from tests.wsclient import Client, connect

QUESTIONNAIRE = "/ws/healthcare-questionnaire"
SAY = "مرحبا بك في هناء"


def _slow_tts() -> FakeTextToSpeech:
    """60 ms of audio a character: prompts last seconds, long enough to talk over."""
    return FakeTextToSpeech(ms_per_char=60, chunk_ms=20)


async def _say_and_collect(client: Client, request_id: str) -> tuple[dict[str, object], bytes]:
    await client.send_json({"type": "say", "text": SAY, "id": request_id})
    start = await client.until("audio.start")
    client.binary.clear()
    end = await client.until("audio.end")
    assert start["id"] == end["id"] == request_id
    assert end["interrupted"] is False
    return start, b"".join(client.binary)


async def test_ws_streams_transcripts_and_speaks_on_request(settings: Settings) -> None:
    loaders, stt, tts = fake_loaders(tts=_slow_tts())
    stt.say("نعم أخذت الدواء")
    async with run_server(live(settings), loaders) as server:
        await engines_ready(server)
        async with connect(server.ws_url + "/ws") as client:
            await client.until("ready")
            await client.send_json({"type": "start", "sample_rate": 16000})
            await stream(client, spoken(16000), 16000)
            partial = await client.until("transcript")
            final = await client.until("transcript")
            assert partial == {**partial, "final": False, "text": "نعم"}
            assert final["final"] is True
            assert final["text"] == "نعم أخذت الدواء"
            start, audio = await _say_and_collect(client, "req-1")
            await client.send_json({"type": "stop"})
            code, _ = await client.closed()
        assert (start["encoding"], start["sample_rate"]) == ("pcm_s16le", 16000)
        # 16-bit samples of the whole utterance: 60 ms per character at 16 kHz.
        assert len(audio) == 2 * int(16000 * tts.duration_ms(SAY) / 1000)
        assert code == 1000


async def test_ws_speaks_mulaw_when_asked(settings: Settings) -> None:
    loaders, _, tts = fake_loaders(tts=_slow_tts())
    async with run_server(live(settings), loaders) as server:
        await engines_ready(server)
        async with connect(server.ws_url + "/ws") as client:
            await client.until("ready")
            await client.send_json(
                {"type": "start", "sample_rate": 8000, "output_encoding": "mulaw"}
            )
            start, audio = await _say_and_collect(client, "req-2")
            await client.send_json({"type": "stop"})
            await client.closed()
    assert (start["encoding"], start["sample_rate"]) == ("mulaw", 8000)
    # One byte a sample at 8 kHz (resampled from the engine's 16 kHz), within a chunk.
    expected = 8000 * tts.duration_ms(SAY) / 1000
    assert abs(len(audio) - expected) <= 160
    samples = np.frombuffer(mulaw.decode(audio), dtype=np.int16)
    assert np.abs(samples).max() > 4000, "the tone survives mu-law"


async def test_echo_json_dialect_transcribes_only(settings: Settings) -> None:
    loaders, stt, _ = fake_loaders()
    stt.say("مرحبا")
    async with run_server(live(settings), loaders) as server:
        await engines_ready(server)
        async with connect(server.ws_url + "/ws/echo") as client:
            await client.send_json({"type": "start", "sample_rate": 16000})
            await client.until("ready")
            await stream(client, spoken(16000), 16000)
            final = await client.until("transcript")
            while not final["final"]:
                final = await client.until("transcript")
            await client.send_json({"type": "say", "text": SAY})
            error = await client.until("error")
            await client.send_json({"type": "stop"})
            code, _ = await client.closed()
        assert final["text"] == "مرحبا"
        assert error["code"] == "not_supported"
        assert not client.binary, "/ws/echo never speaks"
        assert code == 1000


async def test_tts_json_dialect_answers_say_with_audio(settings: Settings) -> None:
    loaders, _, tts = fake_loaders(tts=_slow_tts())
    async with run_server(live(settings), loaders) as server:
        await engines_ready(server)
        async with connect(server.ws_url + "/ws/tts") as client:
            await client.send_json({"type": "start", "sample_rate": 16000})
            await client.until("ready")
            with trio.fail_after(2):  # unpaced: much faster than the audio's own length
                _, audio = await _say_and_collect(client, "t1")
            _, again = await _say_and_collect(client, "t2")
            await client.send_json({"type": "stop"})
            await client.closed()
    assert len(audio) == len(again) == 2 * int(16000 * tts.duration_ms(SAY) / 1000)
    assert tts.texts == [SAY, SAY]


async def test_questionnaire_star_repeats_and_voice_keypad_text_all_answer(
    settings: Settings,
) -> None:
    loaders, stt, _ = fake_loaders()
    stt.say("نعم")
    async with run_server(live(settings), loaders) as server:
        await engines_ready(server)
        async with connect(server.ws_url + QUESTIONNAIRE) as client:
            await client.until("ready")
            await client.send_json({"type": "start", "sample_rate": 16000})
            await wait_prompt(client)
            await client.send(spoken(16000))  # consent by voice
            first = await wait_prompt(client)
            await client.send_json({"type": "dtmf", "digit": "*"})
            repeated = await wait_prompt(client)
            await client.send_json({"type": "dtmf", "digit": "1"})  # by keypad
            second = await wait_prompt(client)
            await client.send_json({"type": "text", "text": "لا"})  # typed
            third = await wait_prompt(client)
            await client.send_json({"type": "stop"})
            code, _ = await client.closed()
        assert first["id"].endswith("medication_adherence")
        assert repeated["text"] == first["text"], "* repeats the same question"
        assert second["id"].endswith("chest_pain_or_breathlessness")
        assert third["id"].endswith("pain_level")
        assert code == 1000
    assert server.services.registry.active == 0


async def test_questionnaire_zero_asks_for_a_person(settings: Settings) -> None:
    loaders, _, _ = fake_loaders()
    async with run_server(live(settings), loaders) as server:
        await engines_ready(server)
        async with connect(server.ws_url + QUESTIONNAIRE) as client:
            ready = await client.until("ready")
            await client.send_json({"type": "start", "sample_rate": 16000})
            await wait_prompt(client)
            await client.send_json({"type": "dtmf", "digit": "1"})
            await wait_prompt(client)
            await client.send_json({"type": "dtmf", "digit": "0"})
            redirect = await client.until("redirect")
            result = await client.until("result")
            end = await client.until("end")
            code, _ = await client.closed()
        assert redirect["reason"], "the browser is told what happens next"
        assert result["result"]["outcome"] == "escalated"
        assert end["reason"] == "escalated"
        assert code == 1000
        stored = await server.services.extras["store"].get_call(ready["session_id"])
        assert stored is not None and stored["status"] == "escalated"


async def test_questionnaire_stop_midway_keeps_answers(settings: Settings) -> None:
    loaders, _, _ = fake_loaders()
    async with run_server(live(settings), loaders) as server:
        await engines_ready(server)
        async with connect(server.ws_url + QUESTIONNAIRE) as client:
            ready = await client.until("ready")
            await client.send_json({"type": "start", "sample_rate": 16000})
            await wait_prompt(client)
            await client.send_json({"type": "dtmf", "digit": "1"})
            await wait_prompt(client)
            await client.send_json({"type": "dtmf", "digit": "1"})
            await client.until("audio.start")
            await client.send_json({"type": "stop"})
            code, reason = await client.closed()
        assert code == 1000
        assert reason == "client sent stop"
        store = server.services.extras["store"]
        with trio.fail_after(10):
            while (stored := await store.get_call(ready["session_id"]))["status"] == "in_progress":
                await trio.sleep(0.05)
        assert stored["status"] == "incomplete"
        assert [a["question_id"] for a in stored["answers"]] == ["medication_adherence"]


async def test_barge_in_cuts_interruptible_prompts_but_not_the_closing(
    settings: Settings,
) -> None:
    loaders, stt, tts = fake_loaders(tts=_slow_tts())
    stt.say("لا")  # refuse consent: the closing prompt follows, which may not be cut
    async with run_server(live(settings), loaders) as server:
        await engines_ready(server)
        async with connect(server.ws_url + QUESTIONNAIRE) as client, trio.open_nursery() as n:
            timeline = Timeline(client)
            n.start_soon(timeline.run)
            await client.send_json({"type": "start", "sample_rate": 16000})
            greeting_at, _, greeting = await timeline.wait_for("audio.start")
            talk_from = trio.current_time()
            await stream(client, spoken(16000), 16000)
            cut, cut_time, _ = await timeline.wait_for("audio.end", id=greeting["id"])
            barge, _, _ = await timeline.wait_for("speech.started")
            closing_at, _, closing = await timeline.wait_for("audio.start", after=cut)
            await stream(client, spoken(16000), 16000)  # talking over the closing
            closed_end, _, _ = await timeline.wait_for("audio.end", id=closing["id"])
            await timeline.wait_for("end")
            code, _ = await timeline.wait_closed()
        ended = timeline.entries[cut][1]
        assert isinstance(ended, dict) and ended["interrupted"] is True
        # The voiced part starts 0.5 s into the stream; the cut follows within the VAD onset.
        assert cut_time - talk_from < 1.2
        assert barge < cut, "speech.started tells the browser to drop queued audio"
        assert closing["id"].endswith("consent_refused")
        assert not timeline.binary_between(cut, closing_at), "no audio after the cut"
        greeting_audio = b"".join(timeline.binary_between(greeting_at, cut))
        full_greeting = 2 * 16000 * tts.duration_ms(greeting["text"]) / 1000
        assert len(greeting_audio) < full_greeting / 2
        closing_end = timeline.entries[closed_end][1]
        assert isinstance(closing_end, dict) and closing_end["interrupted"] is False
        closing_audio = b"".join(timeline.binary_between(closing_at, closed_end))
        assert len(closing_audio) >= 2 * 16000 * tts.duration_ms(closing["text"]) / 1000 * 0.9
        assert code == 1000
