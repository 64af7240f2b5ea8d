"""Results reach the front end only from authenticated calls (issue 11: an anonymous browser
call could name any patient and hospital, and the outbox handed its answers over signed as the
voice service)."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from hana_voice.settings import Settings
from tests.calls.helpers import wait_prompt
from tests.conftest import SECRET, RunningServer, run_server
from tests.hardening.support import answer_the_rest, settled
from tests.wsclient import Client, connect

FORGED = {"patient_id": "P-victim", "hospital_id": "H-victim", "campaign_id": "C-1"}


async def _token(server: RunningServer, **bound: str) -> str:
    async with server.client() as http:
        response = await http.get(
            "/auth/token", params=bound, headers={"Authorization": f"Bearer {SECRET}"}
        )
    assert response.status_code == 200
    body = response.json()
    assert body["bound"] == bound
    token: str = body["token"]
    return token


async def _answer_all(client: Client, context: dict[str, str]) -> str:
    ready = await client.until("ready")
    await client.send_json({"type": "start", "sample_rate": 16000, "context": context})
    await wait_prompt(client)
    await client.send_json({"type": "dtmf", "digit": "1"})
    await answer_the_rest(client)
    session_id: str = ready["session_id"]
    return session_id


async def _stored(server: RunningServer, session_id: str) -> dict[str, Any]:
    return await settled(server.services.extras["store"], session_id)


async def test_anonymous_call_is_stored_as_such_and_never_handed_over(settings: Settings) -> None:
    async with run_server(settings) as server:
        with trio.fail_after(60):
            async with connect(server.ws_url + "/ws/healthcare-questionnaire") as client:
                session_id = await _answer_all(client, FORGED)
            call = await _stored(server, session_id)
    assert call["status"] == "completed"
    assert call["handover"] is False
    assert call["delivery"] == {"state": "not_handed_over"}
    assert call["metadata"]["auth"] == "anonymous"


@pytest.mark.parametrize(
    ("bound", "handover"),
    [(FORGED, True), ({"patient_id": "P-victim"}, False), ({}, False)],
    ids=["bound", "no-hospital", "unbound"],
)
async def test_browser_token_hands_over_only_when_bound_to_the_patient(
    settings: Settings, bound: dict[str, str], handover: bool
) -> None:
    async with run_server(settings) as server:
        token = await _token(server, **bound)
        with trio.fail_after(60):
            path = f"/ws/secure/healthcare?token={token}"
            async with connect(server.ws_url + path) as client:
                # The context may leave the ids out: the token's claims fill them in.
                session_id = await _answer_all(client, {"campaign_id": "C-1"})
            call = await _stored(server, session_id)
    assert call["handover"] is handover
    assert call["metadata"]["auth"] == "token"
    assert call["metadata"]["patient_id"] == bound.get("patient_id")


async def test_bound_token_refuses_another_patient(settings: Settings) -> None:
    async with run_server(settings) as server:
        token = await _token(server, **FORGED)
        with trio.fail_after(20):
            for key in ("patient_id", "hospital_id", "campaign_id"):
                path = f"/ws/secure/healthcare?token={token}"
                async with connect(server.ws_url + path) as client:
                    await client.until("ready")
                    context = {**FORGED, key: "someone-else"}
                    await client.send_json({"type": "start", "context": context})
                    code, reason = await client.closed()
                assert code == 1008
                assert reason == f"the token is not valid for this call's {key}"


async def test_bearer_secret_call_is_handed_over(settings: Settings) -> None:
    async with run_server(settings) as server:
        with trio.fail_after(60):
            headers = [("Authorization", f"Bearer {SECRET}")]
            async with connect(server.ws_url + "/ws/secure/healthcare", headers) as client:
                session_id = await _answer_all(client, FORGED)
            call = await _stored(server, session_id)
    assert call["handover"] is True
    assert call["metadata"]["auth"] == "bearer"
    assert call["metadata"]["patient_id"] == "P-victim"
