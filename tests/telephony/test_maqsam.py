"""Maqsam's voice-agent protocol against a real server, driven by a simulated Maqsam peer."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed

from hana_voice.engines.fake import FakeSpeechToText, FakeTextToSpeech
from hana_voice.questionnaire import load_questionnaires
from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders, spoken
from tests.telephony.peers import (
    CALLEE_NUMBER,
    CALLER_NUMBER,
    RATE,
    MaqsamPeer,
    keypad_caller,
    open_peer,
    prompt_name,
)
from tests.telephony.support import (
    KEYPAD_ANSWERS,
    KEYPAD_EXPECTED,
    KEYPAD_QUESTIONNAIRE,
    MAQSAM_TOKEN,
    QUICK_QUESTIONNAIRE,
    answers_of,
    no_sessions_left,
    stored_call,
    telephony_server,
)
from tests.telephony.support import MAQSAM_AUTH as AUTH
from tests.telephony.support import MAQSAM_CUSTOM as CUSTOM
from tests.telephony.support import MAQSAM_PATH as PATH


async def test_keypad_questionnaire_with_header_auth(settings: Settings, tmp_path: Path) -> None:
    loaders, _, tts = fake_loaders()
    async with telephony_server(settings, tmp_path, loaders) as server:
        with trio.fail_after(30):
            async with open_peer(MaqsamPeer, server.ws_url + PATH, AUTH) as peer:
                await peer.setup(CUSTOM, call_id="mq-keypad")
                await peer.ready.wait()
                peer.nursery.start_soon(peer.stream_line)
                await keypad_caller(peer, KEYPAD_ANSWERS)
                await peer.closed.wait()
        assert peer.close_code == 1000
        assert peer.ready_count == 1
        assert peer.types()[0] == "ready", "session.ready comes before anything else"
        assert peer.hung_up_at is not None and peer.redirected_at is None
        closing = peer.prompt("closing")
        assert closing.heard_at is not None and peer.hung_up_at >= closing.heard_at
        assert peer.types()[-1] == "hangup"
        stored = await stored_call(server, "mq-keypad")
        await no_sessions_left(server)
    assert stored["status"] == "completed"
    assert stored["template_id"] == KEYPAD_QUESTIONNAIRE
    assert answers_of(stored) == KEYPAD_EXPECTED
    metadata = stored["metadata"]
    assert (metadata["patient_id"], metadata["hospital_id"], metadata["campaign_id"]) == (
        "P-1001",
        "H-7",
        "C-2025-04",
    )
    assert metadata["channel"] == "maqsam"
    dumped = json.dumps(stored)
    # Neither number, with or without its "+" (timestamps may hold any short digit run).
    for number in (CALLER_NUMBER, CALLEE_NUMBER):
        assert number not in dumped and number.lstrip("+") not in dumped
    assert tts.texts, "prompts were synthesised"


@pytest.mark.parametrize(
    ("headers", "api_key"),
    [([], MAQSAM_TOKEN), ([("Authorization", f"Bearer {MAQSAM_TOKEN}")], None)],
    ids=["apiKey", "bearer"],
)
async def test_other_credentials_are_accepted(
    settings: Settings, tmp_path: Path, headers: list[tuple[str, str]], api_key: str | None
) -> None:
    loaders, _, _ = fake_loaders()
    async with telephony_server(settings, tmp_path, loaders) as server:
        with trio.fail_after(10):
            async with open_peer(MaqsamPeer, server.ws_url + PATH, headers) as peer:
                await trio.sleep(0.2)
                assert peer.ready_count == 0, "session.ready waits for session.setup"
                await peer.setup(CUSTOM, api_key=api_key)
                await peer.ready.wait()
                await peer.heard.receive()  # the greeting played: the call is live
                assert peer.ready_count == 1
        await no_sessions_left(server)


@pytest.mark.parametrize(
    ("headers", "api_key", "code", "reason"),
    [
        ([("Auth", "wrong")], MAQSAM_TOKEN, 1008, "Unauthorized"),
        ([("Authorization", "Bearer wrong")], None, 1008, "Unauthorized"),
        ([], "wrong", 1002, "Unauthorized: missing or wrong apiKey"),
        ([], None, 1002, "Unauthorized: missing or wrong apiKey"),
    ],
    ids=["auth-header", "bearer", "apiKey", "none"],
)
async def test_bad_credentials_close_with_a_reason(
    settings: Settings,
    tmp_path: Path,
    headers: list[tuple[str, str]],
    api_key: str | None,
    code: int,
    reason: str,
) -> None:
    loaders, _, _ = fake_loaders()
    async with telephony_server(settings, tmp_path, loaders) as server:
        with trio.fail_after(10):
            async with open_peer(MaqsamPeer, server.ws_url + PATH, headers) as peer:
                with contextlib.suppress(ConnectionClosed):
                    await peer.setup(CUSTOM, api_key=api_key)
                await peer.closed.wait()
        assert (peer.close_code, peer.close_reason) == (code, reason)
        assert peer.ready_count == 0 and not peer.prompts
        assert MAQSAM_TOKEN not in (peer.close_reason or "")
        await no_sessions_left(server)


async def test_unconfigured_integration_refuses_every_call(
    settings: Settings, tmp_path: Path
) -> None:
    loaders, _, _ = fake_loaders()
    async with telephony_server(settings, tmp_path, loaders, maqsam_token=None) as server:
        async with server.client() as http:
            status = (await http.get("/maqsam/status")).json()
        assert status["status"] == "not configured"
        assert status["configured"] is False
        for headers, api_key in (([("Auth", MAQSAM_TOKEN)], None), ([], MAQSAM_TOKEN)):
            with trio.fail_after(10):
                async with open_peer(MaqsamPeer, server.ws_url + PATH, headers) as peer:
                    with contextlib.suppress(ConnectionClosed):
                        await peer.setup(CUSTOM, api_key=api_key)
                    await peer.closed.wait()
            assert peer.close_code == 1008
            assert peer.close_reason == "Maqsam integration is not configured (MAQSAM_TOKEN unset)"
            assert peer.ready_count == 0
        await no_sessions_left(server)


async def test_reply_audio_streams_in_small_chunks_near_real_time(
    settings: Settings, tmp_path: Path
) -> None:
    loaders, _, _ = fake_loaders(tts=FakeTextToSpeech(ms_per_char=60, chunk_ms=100))
    async with telephony_server(settings, tmp_path, loaders) as server:
        with trio.fail_after(20):
            async with open_peer(MaqsamPeer, server.ws_url + PATH, AUTH) as peer:
                await peer.setup(CUSTOM)
                await peer.heard.receive()
        greeting = peer.prompt("greeting")
        assert greeting.seconds >= 2.0
        durations = [seconds for _, seconds in greeting.chunks]
        assert all(0.02 - 1e-9 <= d <= 0.1 for d in durations[:-1])
        assert 0 < durations[-1] <= 0.1
        # Paced: a prompt of S seconds takes about S seconds to arrive (at most 200 ms ahead).
        span = greeting.last_at - greeting.first_at
        assert span >= greeting.seconds - 0.35, (span, greeting.seconds)
        ahead = max(
            sum(durations[: i + 1]) - (at - greeting.first_at)
            for i, (at, _) in enumerate(greeting.chunks)
        )
        assert ahead <= 0.35
        # The mark follows the audio; the echo comes once the audio has played.
        assert greeting.marked_at is not None and greeting.heard_at is not None
        assert greeting.heard_at >= greeting.first_at + greeting.seconds - 0.05
        await no_sessions_left(server)


async def test_caller_speech_over_a_prompt_stops_it(settings: Settings, tmp_path: Path) -> None:
    stt = FakeSpeechToText(["نعم"])
    loaders, _, _ = fake_loaders(stt=stt, tts=FakeTextToSpeech(ms_per_char=60, chunk_ms=100))
    async with telephony_server(settings, tmp_path, loaders) as server:
        with trio.fail_after(20):
            async with open_peer(MaqsamPeer, server.ws_url + PATH, AUTH) as peer:
                await peer.setup(CUSTOM)
                await peer.ready.wait()
                peer.nursery.start_soon(peer.stream_line)
                while not peer.prompts:
                    await trio.sleep(0.01)
                await trio.sleep(0.5)
                peer.say(spoken(RATE), onset_seconds=0.5)
                while not peer.barge_ins:
                    await trio.sleep(0.01)
                # The spoken "yes" answers the consent question: the first question follows.
                label = await peer.heard.receive()
                assert label.endswith("q:medication")
        greeting = peer.prompts[0]
        assert greeting.interrupted and greeting.label is None, "no mark for a cut prompt"
        assert greeting.seconds < 2.0, "most of the long greeting was never sent"
        (barge_in,) = peer.barge_ins
        (onset,) = peer.speech_onsets
        assert 0 < barge_in - onset < 0.6, "speech.started follows the speech onset promptly"
        assert greeting.last_at <= barge_in, "no greeting audio after speech.started"
        assert peer.types().count("barge_in") == 1
        await no_sessions_left(server)


async def test_answer_timer_starts_when_the_question_was_heard(
    settings: Settings, tmp_path: Path
) -> None:
    loaders, _, _ = fake_loaders()
    delay = 1.5

    def echo(label: str) -> float:
        return delay if label.endswith("q:medication") else 0.0

    async with telephony_server(
        settings, tmp_path, loaders, default_questionnaire=QUICK_QUESTIONNAIRE
    ) as server:
        with trio.fail_after(20):
            async with open_peer(MaqsamPeer, server.ws_url + PATH, AUTH, echo=echo) as peer:
                await peer.setup({})
                peer.nursery.start_soon(peer.stream_line)
                async for label in peer.heard:
                    if label.endswith("greeting"):
                        await peer.press("1")
                    elif label.endswith("q:medication"):
                        break
                question = peer.prompt("medication")
                while peer.prompts[-1] is question:
                    await trio.sleep(0.01)
                reprompt = peer.prompts[-1]
        assert question.marked_at is not None and question.heard_at is not None
        # Timeout 1 s: counted from the echo (sent `delay` s after the mark), not from sending.
        assert question.heard_at - question.marked_at >= delay
        assert reprompt.first_at - question.heard_at >= 1.0 - 0.05
        assert reprompt.first_at - question.marked_at >= delay + 1.0 - 0.05
        assert reprompt.first_at - question.heard_at < 3.0
        await no_sessions_left(server)


@pytest.mark.parametrize(
    ("keys", "answers"),
    [
        ({"greeting": "1", "medication": "0"}, {}),
        ({"greeting": "1", "medication": "2", "chest_pain": "1"}, {"chest_pain": "yes"}),
    ],
    ids=["pressed-0", "chest-pain"],
)
async def test_hand_over_to_a_person_redirects_after_the_transfer_prompt(
    settings: Settings, tmp_path: Path, keys: dict[str, str], answers: dict[str, str]
) -> None:
    loaders, _, _ = fake_loaders()
    async with telephony_server(settings, tmp_path, loaders) as server:
        with trio.fail_after(20):
            async with open_peer(MaqsamPeer, server.ws_url + PATH, AUTH) as peer:
                peer.close_on_redirect = 0.5  # Maqsam takes the call over, then closes
                await peer.setup(CUSTOM, call_id="mq-transfer")
                await keypad_caller(peer, keys)
                await peer.closed.wait()
        transfer = peer.prompt("escalation_transfer")
        assert transfer.heard_at is not None and peer.redirected_at is not None
        assert peer.redirected_at >= transfer.heard_at
        assert peer.hung_up_at is None
        # We waited for Maqsam to close (a transfer), instead of closing first (a finished call).
        assert peer.closed_itself_at is not None
        assert peer.types()[-1] == "redirect"
        stored = await stored_call(server, "mq-transfer")
        await no_sessions_left(server)
    assert stored["status"] == "escalated"
    assert {k: v for k, v in answers_of(stored).items() if k in answers} == answers


async def test_caller_hanging_up_keeps_the_answers(settings: Settings, tmp_path: Path) -> None:
    loaders, _, _ = fake_loaders()
    async with telephony_server(settings, tmp_path, loaders) as server:
        with trio.fail_after(20):
            async with open_peer(MaqsamPeer, server.ws_url + PATH, AUTH) as peer:
                await peer.setup(CUSTOM, call_id="mq-hangup")
                peer.nursery.start_soon(peer.stream_line)
                async for label in peer.heard:
                    if label.endswith("q:chest_pain"):
                        break
                    await peer.press(KEYPAD_ANSWERS[prompt_name(label)])
                await peer.hang_up()
        stored = await stored_call(server, "mq-hangup")
        await no_sessions_left(server)
    assert stored["status"] == "incomplete"
    assert answers_of(stored) == {"medication": "yes"}


async def test_a_redirect_waits_for_maqsam_only_so_long(settings: Settings, tmp_path: Path) -> None:
    loaders, _, _ = fake_loaders()
    async with telephony_server(settings, tmp_path, loaders, maqsam_redirect_wait=0.6) as server:
        with trio.fail_after(20):
            async with open_peer(MaqsamPeer, server.ws_url + PATH, AUTH) as peer:
                await peer.setup(CUSTOM, call_id="mq-stuck")
                await keypad_caller(peer, {"greeting": "1", "medication": "0"})
                await peer.closed.wait()
                closed_at = trio.current_time()
        assert peer.redirected_at is not None and peer.closed_itself_at is None
        assert 0.6 - 0.05 <= closed_at - peer.redirected_at < 3.0
        assert (peer.close_code, peer.close_reason) == (
            1000,
            "transferred to a person: caller_request",
        )
        stored = await stored_call(server, "mq-stuck")
        await no_sessions_left(server)
    assert stored["status"] == "escalated"


@pytest.mark.parametrize(
    ("path", "custom", "expected"),
    [
        (PATH + f"?questionnaire={KEYPAD_QUESTIONNAIRE}", {}, KEYPAD_QUESTIONNAIRE),
        ("/ws/maqsam" + f"?questionnaire={QUICK_QUESTIONNAIRE}", {}, QUICK_QUESTIONNAIRE),
        (PATH + f"?questionnaire={QUICK_QUESTIONNAIRE}", {"questionnaire_id": 77}, "77"),
        (PATH, {"questionnaire_id": 77}, "77"),
    ],
    ids=["inbound-url", "inbound-plain-path", "campaign-wins", "numeric-id"],
)
async def test_questionnaire_from_the_agent_url_or_a_numeric_id(
    settings: Settings, tmp_path: Path, path: str, custom: dict[str, Any], expected: str
) -> None:
    loaders, _, _ = fake_loaders()
    async with telephony_server(settings, tmp_path, loaders) as server:
        numbered = json.loads(
            (tmp_path / "questionnaires" / f"{QUICK_QUESTIONNAIRE}.json").read_text()
        )
        numbered["id"] = "77"
        (tmp_path / "questionnaires" / "77.json").write_text(json.dumps(numbered))
        server.services.extras["questionnaires"] = load_questionnaires(tmp_path / "questionnaires")
        with trio.fail_after(20):
            async with open_peer(MaqsamPeer, server.ws_url + path, AUTH) as peer:
                await peer.setup(custom, call_id=f"mq-{expected}")
                await peer.heard.receive()
        stored = await stored_call(server, f"mq-{expected}", final=False)
        await no_sessions_left(server)
    assert stored["template_id"] == expected


async def test_an_unknown_questionnaire_in_the_url_gets_an_apology_then_hang_up(
    settings: Settings, tmp_path: Path
) -> None:
    loaders, _, _ = fake_loaders()
    async with telephony_server(settings, tmp_path, loaders) as server:
        with trio.fail_after(20):
            url = server.ws_url + PATH + "?questionnaire=no-such-one"
            async with open_peer(MaqsamPeer, url, AUTH) as peer:
                await peer.setup({})
                await peer.closed.wait()
        # The caller is never left in silence: a short apology, then the hang-up; the
        # close reason names the problem, not the id from the URL.
        assert len(peer.prompts) == 1 and peer.hung_up_at is not None
        assert peer.close_reason == "questionnaire unavailable: unknown questionnaire"
        await no_sessions_left(server)
