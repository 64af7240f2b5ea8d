"""The healthcare questionnaire over /ws/healthcare-questionnaire with fake engines."""

from __future__ import annotations

from typing import Any

import trio

from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders, live, spoken
from tests.conftest import RunningServer, run_server
from tests.wsclient import Client, connect

PATH = "/ws/healthcare-questionnaire"


async def _wait_prompt(client: Client) -> dict[str, Any]:
    """Read until a prompt has been fully sent; return its audio.start message."""
    start = await client.until("audio.start")
    end = await client.until("audio.end")
    assert end["id"] == start["id"]
    return start


async def _ready(server: RunningServer) -> None:
    with trio.fail_after(10):
        await server.services.engines.loaded.wait()


async def test_full_questionnaire_by_keypad_and_text(settings: Settings) -> None:
    loaders, _, tts = fake_loaders()
    async with run_server(live(settings), loaders) as server:
        await _ready(server)
        async with connect(server.ws_url + PATH) as client:
            ready = await client.until("ready")
            await client.send_json({"type": "start", "sample_rate": 16000})
            greeting = await _wait_prompt(client)
            assert greeting["sample_rate"] == 16000
            await client.send_json({"type": "dtmf", "digit": "1"})  # consent
            steps = [
                ("medication_adherence", ["1"]),
                ("chest_pain_or_breathlessness", ["2"]),
                ("pain_level", ["3"]),  # "3" completes a 0-10 rating: no "#" needed
                ("fever", ["2"]),
                ("overall_condition", ["1"]),
                ("follow_up_appointment", ["1"]),
            ]
            for question_id, keys in steps:
                prompt = await _wait_prompt(client)
                assert prompt["id"].endswith(question_id)
                for key in keys:
                    await client.send_json({"type": "dtmf", "digit": key})
            prompt = await _wait_prompt(client)
            assert prompt["id"].endswith("notes_for_care_team")
            await client.send_json({"type": "text", "text": "لا شيء، شكرا"})
            result = await client.until("result", timeout=20)
            end = await client.until("end", timeout=20)
            code, _ = await client.closed()
        assert code == 1000
        assert end["reason"]
        outcome = result["result"]
        assert outcome["outcome"] == "completed"
        answers = {a["question_id"]: a["response"] for a in outcome["answers"]}
        assert answers["medication_adherence"] == "yes"
        assert answers["chest_pain_or_breathlessness"] == "no"
        assert answers["pain_level"] == 3
        assert answers["overall_condition"] == "better"
        assert answers["notes_for_care_team"] == "لا شيء، شكرا"
        assert client.binary, "the prompts' audio was sent"
        stored = await server.services.extras["store"].get_call(ready["session_id"])
        assert stored is not None
        assert stored["status"] == "completed"
        assert len(stored["answers"]) == 7
        assert tts.texts, "prompts were synthesised"
    assert server.services.registry.active == 0


async def test_voice_answers_through_the_recogniser(settings: Settings) -> None:
    loaders, stt, _ = fake_loaders()
    stt.say("نعم", "نعم أخذتها")
    async with run_server(live(settings), loaders) as server:
        await _ready(server)
        async with connect(server.ws_url + PATH) as client:
            await client.until("ready")
            await client.send_json({"type": "start", "sample_rate": 16000})
            await _wait_prompt(client)
            await client.send(spoken(16000))
            # Audio reaches the recogniser in 100 ms slices: partials may come first.
            transcript = await client.until("transcript")
            while not transcript["final"]:
                transcript = await client.until("transcript")
            assert transcript["text"] == "نعم"
            question = await client.until("audio.start")
            assert question["id"].endswith("medication_adherence")
            await client.until("audio.end")
            await client.send(spoken(16000))
            second = await client.until("transcript")
            while not second["final"]:
                second = await client.until("transcript")
            assert second["text"] == "نعم أخذتها"
            await client.until("audio.start")  # the next question: the answer was taken
            await client.send_json({"type": "stop"})
            code, _ = await client.closed()
        assert code == 1000


async def test_dropped_call_keeps_answers_and_is_incomplete(settings: Settings) -> None:
    loaders, _, _ = fake_loaders()
    async with run_server(live(settings), loaders) as server:
        await _ready(server)
        async with connect(server.ws_url + PATH) as client:
            ready = await client.until("ready")
            await _send_start_and_consent(client)
            await _wait_prompt(client)
            await client.send_json({"type": "dtmf", "digit": "1"})
            await _wait_prompt(client)
        # The client vanished mid-questionnaire.
        store = server.services.extras["store"]
        with trio.fail_after(10):
            while (stored := await store.get_call(ready["session_id"])) is None or stored[
                "status"
            ] == "in_progress":
                await trio.sleep(0.05)
        assert stored["status"] == "incomplete"
        assert [a["question_id"] for a in stored["answers"]] == ["medication_adherence"]
        with trio.fail_after(10):
            while server.services.registry.active:
                await trio.sleep(0.05)


async def _send_start_and_consent(client: Client) -> None:
    await client.send_json({"type": "start", "sample_rate": 16000})
    await _wait_prompt(client)
    await client.send_json({"type": "dtmf", "digit": "1"})


async def test_unknown_questionnaire_is_refused(settings: Settings) -> None:
    loaders, _, _ = fake_loaders()
    async with run_server(live(settings), loaders) as server:
        await _ready(server)
        async with connect(server.ws_url + PATH) as client:
            await client.until("ready")
            await client.send_json({"type": "start", "questionnaire_id": "nope"})
            error = await client.until("error")
            code, reason = await client.closed()
        assert error["code"] == "unknown_questionnaire"
        assert code == 1008
        assert reason == "unknown questionnaire"  # the client's id is not echoed
