"""Twilio as Twilio works: signed upgrades, the token as a ``<Parameter>``, hang-up and transfer
through the REST API (a fake Twilio API that ends the stream as Twilio does), failures."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed

from hana_voice.engines.fake import FakeSpeechToText, FakeTextToSpeech
from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders, spoken
from tests.conftest import RunningServer
from tests.telephony.peers import (
    CALLEE_NUMBER,
    CALLER_NUMBER,
    RATE,
    EchoPolicy,
    TwilioPeer,
    keypad_caller,
    open_peer,
    prompt_name,
    twilio_signature,
)
from tests.telephony.support import (
    KEYPAD_ANSWERS,
    KEYPAD_EXPECTED,
    KEYPAD_QUESTIONNAIRE,
    QUICK_PAIR_QUESTIONNAIRE,
    TELEPHONY_TOKEN,
    answers_of,
    no_sessions_left,
    stored_call,
    telephony_server,
    twilio_changes,
)
from tests.telephony.twilio_api import AUTH_TOKEN, TRANSFER_TO, FakeTwilioApi, fake_twilio_api

PATH = "/ws/telephony/healthcare"
CUSTOM = {"questionnaire_id": KEYPAD_QUESTIONNAIRE, "patient_id": "P-3003", "hospital_id": "H-1"}
CRITICAL_KEYS = {"greeting": "1", "medication": "1", "chest_pain": "1"}
CALL_SID = "CA" + "0f" * 16
REFUSED = "missing or wrong telephony token"


@asynccontextmanager
async def twilio_server(
    settings: Settings,
    tmp_path: Path,
    *,
    stt: FakeSpeechToText | None = None,
    tts: FakeTextToSpeech | None = None,
    **changes: Any,
) -> AsyncIterator[tuple[RunningServer, FakeTwilioApi]]:
    loaders, _, _ = fake_loaders(stt=stt, tts=tts)
    async with fake_twilio_api() as api:
        config = twilio_changes(api, **changes)
        async with telephony_server(settings, tmp_path, loaders, **config) as server:
            yield server, api


def signed(server: RunningServer, path: str = PATH) -> tuple[str, list[tuple[str, str]]]:
    """The URL to dial and Twilio's signature of it (as Twilio signs: the wss:// URL)."""
    url = server.ws_url + path
    return url, twilio_signature(AUTH_TOKEN, url.replace("ws://", "wss://"))


@asynccontextmanager
async def twilio_peer(
    server: RunningServer, api: FakeTwilioApi, *, echo: EchoPolicy | None = None
) -> AsyncIterator[TwilioPeer]:
    """A signed Twilio peer whose stream Twilio ends once the call is updated over REST."""
    url, headers = signed(server)
    async with open_peer(TwilioPeer, url, headers, echo=echo) as peer:

        async def end_stream(call_sid: str, form: Mapping[str, str]) -> None:
            with contextlib.suppress(RuntimeError):  # the peer's side already ended
                peer.nursery.start_soon(peer.stop_and_close)

        api.on_update = end_stream
        yield peer


async def metric(server: RunningServer, name: str, **labels: str) -> float:
    async with server.client() as http:
        text = (await http.get("/metrics")).text
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{"):
            got = ",".join(sorted(line[len(name) + 1 : line.index("}")].split(",")))
            if got == wanted:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


# ---------------------------------------------------------------- whole calls


async def test_whole_questionnaire_ends_with_a_rest_hang_up(
    settings: Settings, tmp_path: Path
) -> None:
    async with twilio_server(settings, tmp_path) as (server, api):
        with trio.fail_after(30):
            async with twilio_peer(server, api) as peer:
                await peer.setup(CUSTOM, call_sid=CALL_SID, token=TELEPHONY_TOKEN)
                peer.nursery.start_soon(peer.stream_line)
                await keypad_caller(peer, KEYPAD_ANSWERS)
        (hang_up,) = api.requests
        assert hang_up.form == {"Status": "completed"} and hang_up.path.endswith(CALL_SID + ".json")
        closing = peer.prompt("closing")
        assert closing.heard_at is not None and peer.stream_ended_at is not None
        assert peer.stream_ended_at >= closing.heard_at, "hung up once the goodbye was heard"
        stored = await stored_call(server, CALL_SID)
        assert (
            await metric(
                server,
                "hana_provider_requests_total",
                provider="twilio",
                action="hangup",
                result="ok",
            )
            == 1
        )
        await no_sessions_left(server)
    assert stored["status"] == "completed"
    assert answers_of(stored) == KEYPAD_EXPECTED
    dumped = json.dumps(stored)
    for secret in (CALLER_NUMBER, CALLEE_NUMBER, TELEPHONY_TOKEN, TRANSFER_TO, AUTH_TOKEN):
        assert secret not in dumped


async def test_critical_answer_is_transferred_once_the_prompt_was_heard(
    settings: Settings, tmp_path: Path
) -> None:
    async with twilio_server(settings, tmp_path) as (server, api):
        with trio.fail_after(30):
            async with twilio_peer(server, api) as peer:
                await peer.setup(CUSTOM, call_sid=CALL_SID, token=TELEPHONY_TOKEN)
                await keypad_caller(peer, CRITICAL_KEYS)
        (transfer,) = api.requests
        assert transfer.form == {"Twiml": f"<Response><Dial>{TRANSFER_TO}</Dial></Response>"}
        prompt = peer.prompt("escalation_transfer")
        assert prompt.heard_at is not None and peer.stream_ended_at is not None
        assert peer.stream_ended_at >= prompt.heard_at
        assert "transfer_failed" not in [prompt_name(p.label or "") for p in peer.prompts]
        stored = await stored_call(server, CALL_SID)
        await no_sessions_left(server)
    assert stored["status"] == "escalated" and stored["outcome"] == "escalated"
    assert answers_of(stored)["chest_pain"] == "yes"


async def test_a_transient_5xx_on_transfer_is_retried(settings: Settings, tmp_path: Path) -> None:
    async with twilio_server(settings, tmp_path) as (server, api):
        api.fail(503, times=1)
        with trio.fail_after(30):
            async with twilio_peer(server, api) as peer:
                await peer.setup(CUSTOM, call_sid=CALL_SID, token=TELEPHONY_TOKEN)
                await keypad_caller(peer, CRITICAL_KEYS)
        assert [r.status for r in api.requests] == [503, 200]
        assert "Twiml" in api.requests[1].form
        stored = await stored_call(server, CALL_SID)
        await no_sessions_left(server)
    assert stored["status"] == "escalated"


@pytest.mark.parametrize(
    ("failure", "changes"),
    [(401, {}), (500, {}), ("hang", {}), (None, {"twilio_transfer_to": None}),
     (None, {"twilio_account_sid": None})],
    ids=["401", "500", "no-answer", "no-number", "no-account"],
)  # fmt: skip
async def test_a_failed_transfer_promises_a_call_back(
    settings: Settings, tmp_path: Path, failure: int | str | None, changes: dict[str, Any]
) -> None:
    async with twilio_server(settings, tmp_path, **changes) as (server, api):
        if failure == "hang":
            api.hang = True
        elif isinstance(failure, int):
            api.fail(failure)
        with trio.fail_after(40):
            async with twilio_peer(server, api) as peer:
                await peer.setup(CUSTOM, call_sid=CALL_SID, token=TELEPHONY_TOKEN)
                await keypad_caller(peer, CRITICAL_KEYS)
        transfer = peer.prompt("escalation_transfer")
        call_back = peer.prompt("transfer_failed")
        assert transfer.heard_at is not None and call_back.heard_at is not None
        assert call_back.first_at >= transfer.heard_at, "never cut off after the promise"
        if "twilio_transfer_to" in changes:
            # Only the number is missing: the API works, so the call is hung up through it.
            assert [r.form for r in api.updates] == [{"Status": "completed"}]
            assert peer.stream_ended_at is not None and peer.stream_ended_at >= call_back.heard_at
        else:
            # The hang-up fails the same way, so closing the socket ends the stream.
            assert api.updates == []
            assert (peer.close_code, peer.close_reason) == (
                1000,
                "questionnaire ended: transfer_failed",
            )
        stored = await stored_call(server, CALL_SID)
        failed = await metric(
            server, "hana_provider_requests_total", provider="twilio", action="transfer",
            result="failed" if failure is not None else "not_configured",
        )  # fmt: skip
        assert failed == 1
        await no_sessions_left(server)
    assert (stored["status"], stored["outcome"]) == ("escalated", "transfer_failed")
    assert answers_of(stored) == {"medication": "yes", "chest_pain": "yes"}


async def test_caller_hanging_up_needs_no_rest_request(settings: Settings, tmp_path: Path) -> None:
    async with twilio_server(settings, tmp_path) as (server, api):
        with trio.fail_after(20):
            async with twilio_peer(server, api) as peer:
                await peer.setup(CUSTOM, call_sid=CALL_SID, token=TELEPHONY_TOKEN)
                async for label in peer.heard:
                    if label.endswith("q:chest_pain"):
                        break
                    await peer.press(KEYPAD_ANSWERS[prompt_name(label)])
                await peer.stop_and_close()
        stored = await stored_call(server, CALL_SID)
        await no_sessions_left(server)
    assert api.requests == []
    assert stored["status"] == "incomplete" and answers_of(stored) == {"medication": "yes"}


async def test_a_call_ended_by_the_server_is_hung_up_at_twilio_too(
    settings: Settings, tmp_path: Path
) -> None:
    """Idle timeout (the line went silent): the server ends the call, and tells Twilio so."""
    async with twilio_server(settings, tmp_path, idle_timeout=1.0) as (server, api):
        with trio.fail_after(20):
            async with twilio_peer(server, api) as peer:
                await peer.setup(CUSTOM, call_sid=CALL_SID, token=TELEPHONY_TOKEN)
                await peer.closed.wait()  # no audio, no keys: the call idles out
        assert [r.form for r in api.updates] == [{"Status": "completed"}]
        stored = await stored_call(server, CALL_SID)
        await no_sessions_left(server)
    assert stored["status"] == "incomplete"


# ---------------------------------------------------------------- who may open a call


async def refused(
    server: RunningServer,
    url: str,
    headers: list[tuple[str, str]],
    setup: dict[str, Any] | None = None,
) -> TwilioPeer:
    with trio.fail_after(10):
        async with open_peer(TwilioPeer, url, headers) as peer:
            with contextlib.suppress(ConnectionClosed):
                await peer.setup(CUSTOM, **(setup or {}))
            await peer.closed.wait()
    assert not peer.prompts and not peer.received, "nothing played before the check"
    await no_sessions_left(server)
    return peer


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        ("omitted", "missing X-Twilio-Signature"),
        ("forged", "invalid X-Twilio-Signature"),
        ("stale-token", "invalid X-Twilio-Signature"),
        ("other-url", "invalid X-Twilio-Signature"),
        ("https-scheme", "invalid X-Twilio-Signature"),
    ],
)
async def test_bad_signatures_are_refused_with_1008(
    settings: Settings, tmp_path: Path, signature: str, reason: str
) -> None:
    async with twilio_server(settings, tmp_path) as (server, _):
        url, good = signed(server)
        wss = url.replace("ws://", "wss://")
        headers = {
            "omitted": [],
            "forged": [("X-Twilio-Signature", "bm90IGEgc2lnbmF0dXJlIGF0IGFsbA==")],
            # Signed with a previous auth token (rotated since): no longer Twilio's.
            "stale-token": twilio_signature("the-previous-auth-token-0000", wss),
            # A signature captured from another endpoint of the same server.
            "other-url": twilio_signature(AUTH_TOKEN, wss.replace(PATH, "/ws/telephony")),
            "https-scheme": twilio_signature(AUTH_TOKEN, wss.replace("wss://", "https://")),
        }[signature]
        peer = await refused(server, url, headers, {"token": TELEPHONY_TOKEN})
    assert (peer.close_code, peer.close_reason) == (1008, reason)
    assert good != headers


async def test_a_query_string_is_part_of_the_signed_url(settings: Settings, tmp_path: Path) -> None:
    """Providers that allow query strings sign them too (Twilio itself allows none)."""
    async with twilio_server(settings, tmp_path) as (server, _):
        url, headers = signed(server, PATH + f"?questionnaire={KEYPAD_QUESTIONNAIRE}")
        with trio.fail_after(20):
            async with open_peer(TwilioPeer, url, headers) as peer:
                await peer.setup({}, call_sid=CALL_SID, token=TELEPHONY_TOKEN)
                assert prompt_name(await peer.heard.receive()) == "greeting"
        stored = await stored_call(server, CALL_SID, final=False)
        # Signed without its query string: not the URL that was dialled.
        unsigned_query = signed(server)[1]
        peer = await refused(server, url, unsigned_query, {"token": TELEPHONY_TOKEN})
        assert peer.close_reason == "invalid X-Twilio-Signature"
        await no_sessions_left(server)
    assert stored["template_id"] == KEYPAD_QUESTIONNAIRE


async def test_public_url_names_the_host_twilio_dialled(settings: Settings, tmp_path: Path) -> None:
    public = "https://voice.example.org/hana"
    async with twilio_server(settings, tmp_path, public_url=public) as (server, _):
        url = server.ws_url + PATH
        # Behind the proxy the server sees another host and no prefix; Twilio signed this:
        headers = twilio_signature(AUTH_TOKEN, "wss://voice.example.org/hana" + PATH)
        with trio.fail_after(20):
            async with open_peer(TwilioPeer, url, headers) as peer:
                await peer.setup(CUSTOM, call_sid=CALL_SID, token=TELEPHONY_TOKEN)
                assert prompt_name(await peer.heard.receive()) == "greeting"
        # Signed for the host the server itself sees: not what Twilio would have signed.
        peer = await refused(server, url, signed(server)[1], {"token": TELEPHONY_TOKEN})
        assert peer.close_reason == "invalid X-Twilio-Signature"
        await no_sessions_left(server)


@pytest.mark.parametrize(
    "setup",
    [
        {},
        {"token": "wrong-token"},
        {"custom": {"Token": TELEPHONY_TOKEN}},
        {"custom": {"apiKey": TELEPHONY_TOKEN}},
        {"custom": {"auth_token": TELEPHONY_TOKEN}},
    ],
    ids=["missing", "wrong", "capitalised-name", "apiKey-name", "other-name"],
)
async def test_token_parameter_missing_wrong_or_misplaced_is_refused(
    settings: Settings, tmp_path: Path, setup: dict[str, Any]
) -> None:
    async with twilio_server(settings, tmp_path) as (server, _):
        url, headers = signed(server)
        extra = dict(setup.pop("custom", {}))
        with trio.fail_after(10):
            async with open_peer(TwilioPeer, url, headers) as peer:
                with contextlib.suppress(ConnectionClosed):
                    await peer.setup({**CUSTOM, **extra}, **setup)
                    # Audio right after start must not be processed before the check.
                    await peer.send_pcm(bytes(320))
                await peer.closed.wait()
        assert (peer.close_code, peer.close_reason) == (1008, REFUSED)
        assert not peer.prompts
        await no_sessions_left(server)


async def test_the_query_token_still_works_without_twilio_settings(
    settings: Settings, tmp_path: Path
) -> None:
    """Other providers allow query strings; with no TWILIO_AUTH_TOKEN no signature is asked."""
    loaders, _, _ = fake_loaders()
    async with telephony_server(settings, tmp_path, loaders) as server:
        url = (
            server.ws_url + PATH + f"?token={TELEPHONY_TOKEN}&questionnaire={KEYPAD_QUESTIONNAIRE}"
        )
        with trio.fail_after(20):
            async with open_peer(TwilioPeer, url) as peer:
                await peer.setup({}, call_sid="CA-query")
                assert prompt_name(await peer.heard.receive()) == "greeting"
        stored = await stored_call(server, "CA-query", final=False)
        await no_sessions_left(server)
    assert stored["template_id"] == KEYPAD_QUESTIONNAIRE


# ---------------------------------------------------------------- marks after clear


async def test_marks_echoed_for_cleared_audio_do_not_count_as_heard(
    settings: Settings, tmp_path: Path
) -> None:
    """Twilio echoes every waiting mark at once on ``clear``. The first question's mark is still
    waiting when the caller talks over the second: its echo must not start the first
    question's answer timer (which would stop the second from ever being asked again)."""

    def echo(label: str) -> float:
        return 2.0 if prompt_name(label) == "medication" else 0.0

    stt = FakeSpeechToText()  # the caller's words are not understood: empty finals
    tts = FakeTextToSpeech(ms_per_char=60, chunk_ms=100)
    async with twilio_server(
        settings, tmp_path, stt=stt, tts=tts, default_questionnaire=QUICK_PAIR_QUESTIONNAIRE
    ) as (server, api):
        with trio.fail_after(30):
            async with twilio_peer(server, api, echo=echo) as peer:
                await peer.setup({}, call_sid=CALL_SID, token=TELEPHONY_TOKEN)
                peer.nursery.start_soon(peer.stream_line)
                assert prompt_name(await peer.heard.receive()) == "greeting"
                await peer.press("1")
                while not any(prompt_name(p.label or "") == "medication" for p in peer.prompts):
                    await trio.sleep(0.01)
                await peer.press("1")  # answered as soon as it was sent, before its echo
                while len(peer.prompts) < 3:  # the second question is playing
                    await trio.sleep(0.01)
                peer.say(spoken(RATE), onset_seconds=0.5)
                while not peer.barge_ins:
                    await trio.sleep(0.01)
                medication = peer.prompt("medication")
                assert medication.cleared and medication.heard_at is None
                assert peer.prompts[2].interrupted
                # The second question's answer timer (1 s) runs out: it is asked again.
                while not any(prompt_name(p.label or "") == "chest_pain" for p in peer.prompts):
                    await trio.sleep(0.02)
        await no_sessions_left(server)
