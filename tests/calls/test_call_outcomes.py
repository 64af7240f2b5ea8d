"""Call outcomes end to end: stored, in GET /calls/<id>, /metrics and the result message;
personal prompts prepared at set-up and kept out of the prompt cache."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import trio

from hana_voice.calls.call import Call
from hana_voice.calls.questionnaire_dialog import QuestionnaireRun
from hana_voice.events import CallStarted
from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders, live
from tests.conftest import RunningServer, run_server
from tests.wsclient import Client, connect

PATH = "/ws/healthcare-questionnaire"
NAME = "سارة العتيبي"


async def _prompt(client: Client) -> dict[str, Any]:
    start = await client.until("audio.start")
    await client.until("audio.end")
    return start


async def _stored(server: RunningServer, session_id: str) -> dict[str, Any]:
    store = server.services.extras["store"]
    with trio.fail_after(10):
        while (stored := await store.get_call(session_id)) is None or stored[
            "status"
        ] == "in_progress":
            await trio.sleep(0.05)
    assert isinstance(stored, dict)
    return stored


async def test_wrong_person_is_stored_shown_and_counted(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    loaders, _, tts = fake_loaders()
    async with run_server(live(settings), loaders) as server:
        with trio.fail_after(10):
            await server.services.engines.loaded.wait()
        async with connect(server.ws_url + PATH) as client:
            ready = await client.until("ready")
            await client.send_json({"type": "start", "sample_rate": 16000,
                                    "context": {"patient_name": NAME}})  # fmt: skip
            identity = await _prompt(client)
            assert identity["id"].endswith("identity") and NAME in identity["text"]
            await client.send_json({"type": "text", "text": "لا، أنا أخوه"})
            goodbye = await _prompt(client)
            assert goodbye["id"].endswith("wrong_person")
            result = (await client.until("result", timeout=20))["result"]
            await client.closed()
        assert result["outcome"] == "wrong_person" and result["answers"] == []
        stored = await _stored(server, ready["session_id"])
        assert (stored["outcome"], stored["status"]) == ("wrong_person", "incomplete")
        async with server.client() as http:
            secret = server.services.settings.voice_service_secret
            headers = {"Authorization": f"Bearer {secret}"}
            shown = (await http.get(f"/calls/{ready['session_id']}", headers=headers)).json()
            metrics = (await http.get("/metrics")).text
        assert shown["outcome"] == "wrong_person"
        assert 'hana_call_outcomes_total{outcome="wrong_person"} 1.0' in metrics
        # The name was synthesised for this call only: never in the prompt cache.
        cache = server.services.extras["prompt_cache"]
        assert await cache.get(tts, identity["text"]) is None
        assert NAME in " ".join(tts.texts)
    assert "call.outcome" in caplog.text and NAME not in caplog.text


async def test_skipped_questions_are_stored_skipped(settings: Settings) -> None:
    loaders, _, _ = fake_loaders()
    async with run_server(live(settings), loaders) as server:
        with trio.fail_after(10):
            await server.services.engines.loaded.wait()
        async with connect(server.ws_url + PATH) as client:
            ready = await client.until("ready")
            await client.send_json({"type": "start", "sample_rate": 16000,
                                    "questionnaire_id": "personal_followup"})  # fmt: skip
            greeting = await _prompt(client)
            assert greeting["id"].endswith("greeting")  # no name: no identity check
            for key in ("1", "1", "2"):  # consent; taking the medication; pain 2
                await client.send_json({"type": "dtmf", "digit": key})
                await _prompt(client)
            await client.send_json({"type": "stop"})
            await client.closed()
        stored = await _stored(server, ready["session_id"])
        statuses = {a["question_id"]: a["status"] for a in stored["answers"]}
        assert statuses == {
            "taking_medication": "answered",
            "medication_problem": "skipped",
            "side_effects_severe": "skipped",
            "pain_level": "answered",
            "pain_worse_at_night": "skipped",
        }
        assert stored["outcome"] == "partial"


async def test_callback_time_reaches_the_result_and_the_store(settings: Settings) -> None:
    loaders, _, _ = fake_loaders()
    async with run_server(live(settings), loaders) as server:
        with trio.fail_after(10):
            await server.services.engines.loaded.wait()
        async with connect(server.ws_url + PATH) as client:
            ready = await client.until("ready")
            await client.send_json({"type": "start", "sample_rate": 16000})
            await _prompt(client)
            await client.send_json({"type": "text", "text": "مشغول الحين، كلمني بعد ساعتين"})
            result = (await client.until("result", timeout=20))["result"]
            await client.closed()
        assert result["outcome"] == "callback_requested"
        at = result["outcome_detail"]["callback_at"]
        assert at is not None and at.endswith("+03:00")
        stored = await _stored(server, ready["session_id"])
        assert stored["outcome"] == "callback_requested"
        assert stored["outcome_detail"] == {"callback_at": at}


async def test_a_call_dropped_before_a_word_is_no_response(settings: Settings) -> None:
    loaders, _, _ = fake_loaders()
    async with run_server(live(settings), loaders) as server:
        with trio.fail_after(10):
            await server.services.engines.loaded.wait()
        async with connect(server.ws_url + PATH) as client:
            ready = await client.until("ready")
            await client.send_json({"type": "start", "sample_rate": 16000})
            await _prompt(client)
        stored = await _stored(server, ready["session_id"])
        assert stored["outcome"] == "no_response"


def test_set_outcome_checks_the_name_and_wins(settings: Settings, tmp_path: Path) -> None:
    call = Call.__new__(Call)  # only the override is used here
    call.outcome_override = None
    with pytest.raises(ValueError, match="unknown call outcome"):
        Call.set_outcome(call, "lost")
    Call.set_outcome(call, "transfer_failed", {"reason": "busy"})
    run = QuestionnaireRun.__new__(QuestionnaireRun)
    run.call = call
    run.result, run.failed, run.state = None, False, None
    assert run.outcome() == ("transfer_failed", {"reason": "busy"})
    call.outcome_override = None
    assert run.outcome() == ("no_response", {})
    run.failed = True
    assert run.outcome() == ("failed", {})
    assert CallStarted().context == {}
