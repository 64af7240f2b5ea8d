"""The Twilio REST client against a fake Twilio API: requests, retries, failures, metrics."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from hana_voice.errors import ProviderError
from hana_voice.metrics import Metrics
from hana_voice.settings import Settings
from hana_voice.telephony.twilio_rest import ATTEMPTS, TwilioRest, transfer_twiml
from tests.telephony.support import twilio_changes
from tests.telephony.twilio_api import ACCOUNT_SID, TRANSFER_TO, FakeTwilioApi, fake_twilio_api

CALL_SID = "CA" + "ab" * 16
PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{CALL_SID}.json"


@pytest.fixture
async def api() -> AsyncIterator[FakeTwilioApi]:
    async with fake_twilio_api() as fake:
        yield fake


def rest_for(api: FakeTwilioApi, **changes: Any) -> tuple[TwilioRest, Metrics]:
    metrics = Metrics()
    return TwilioRest(Settings(**twilio_changes(api, **changes)), metrics), metrics


def count(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, {"provider": "twilio", **labels})
    return value or 0.0


async def test_hang_up_posts_status_completed(api: FakeTwilioApi) -> None:
    rest, metrics = rest_for(api)
    with trio.fail_after(5):
        await rest.hang_up(CALL_SID)
    await rest.aclose()
    (request,) = api.requests
    assert (request.method, request.path, request.status) == ("POST", PATH, 200)
    assert request.form == {"Status": "completed"}
    assert count(metrics, "hana_provider_requests_total", action="hangup", result="ok") == 1


async def test_transfer_dials_the_configured_number(api: FakeTwilioApi) -> None:
    rest, metrics = rest_for(api)
    with trio.fail_after(5):
        await rest.transfer(CALL_SID)
    await rest.aclose()
    (request,) = api.updates
    assert request.form == {"Twiml": f"<Response><Dial>{TRANSFER_TO}</Dial></Response>"}
    assert count(metrics, "hana_provider_requests_total", action="transfer", result="ok") == 1


def test_transfer_twiml_for_a_sip_uri_is_escaped() -> None:
    assert transfer_twiml("sip:desk@pbx.example.org") == (
        "<Response><Dial><Sip>sip:desk@pbx.example.org</Sip></Dial></Response>"
    )
    assert transfer_twiml("sip:a@b?x=1&y=<2>") == (
        "<Response><Dial><Sip>sip:a@b?x=1&amp;y=&lt;2&gt;</Sip></Dial></Response>"
    )


async def test_a_5xx_is_retried_briefly(api: FakeTwilioApi) -> None:
    api.fail(500, times=1)
    rest, metrics = rest_for(api)
    with trio.fail_after(5):
        await rest.transfer(CALL_SID)
    await rest.aclose()
    assert [r.status for r in api.requests] == [500, 200]
    assert count(metrics, "hana_provider_retries_total", action="transfer") == 1
    assert count(metrics, "hana_provider_requests_total", action="transfer", result="ok") == 1


@pytest.mark.parametrize(
    ("failure", "attempts", "status"),
    [(500, ATTEMPTS, 500), (503, ATTEMPTS, 503), (401, 1, 401), (404, 1, 404)],
)
async def test_failures_are_final_after_retries_or_at_once(
    api: FakeTwilioApi, failure: int, attempts: int, status: int
) -> None:
    api.fail(failure)
    rest, metrics = rest_for(api)
    with trio.fail_after(10), pytest.raises(ProviderError) as caught:
        await rest.hang_up(CALL_SID)
    await rest.aclose()
    assert caught.value.status == status and f"HTTP {status}" in str(caught.value)
    assert len(api.requests) == attempts
    assert count(metrics, "hana_provider_requests_total", action="hangup", result="failed") == 1
    assert count(metrics, "hana_provider_retries_total", action="hangup") == attempts - 1


async def test_wrong_credentials_are_answered_401_by_the_fake(api: FakeTwilioApi) -> None:
    rest, _ = rest_for(api, twilio_auth_token="not-the-auth-token")
    with trio.fail_after(5), pytest.raises(ProviderError, match="HTTP 401"):
        await rest.hang_up(CALL_SID)
    await rest.aclose()
    assert [r.status for r in api.requests] == [401]


async def test_an_api_that_never_answers_times_out(api: FakeTwilioApi) -> None:
    api.hang = True
    rest, metrics = rest_for(api, twilio_api_timeout=0.3)
    started = trio.current_time()
    with trio.fail_after(10), pytest.raises(ProviderError, match="timeout"):
        await rest.transfer(CALL_SID)
    await rest.aclose()
    assert len(api.requests) == ATTEMPTS
    assert trio.current_time() - started < ATTEMPTS * 0.6 + 1.0
    assert count(metrics, "hana_provider_requests_total", action="transfer", result="failed") == 1


async def test_an_unreachable_api_is_a_failure_not_a_crash() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again at once: nothing listens there
    api = FakeTwilioApi(url=f"http://127.0.0.1:{port}")
    rest, metrics = rest_for(api)
    with trio.fail_after(10), pytest.raises(ProviderError, match="network error"):
        await rest.hang_up(CALL_SID)
    await rest.aclose()
    assert count(metrics, "hana_provider_retries_total", action="hangup") == ATTEMPTS - 1


@pytest.mark.parametrize(
    ("changes", "call_sid"),
    [
        ({"twilio_account_sid": None}, CALL_SID),
        ({"twilio_auth_token": None}, CALL_SID),
        ({"twilio_transfer_to": None}, CALL_SID),
        ({}, None),
        ({}, "../../Accounts/x"),
    ],
    ids=["no-sid", "no-token", "no-number", "no-call-sid", "bad-call-sid"],
)
async def test_nothing_is_sent_when_a_transfer_cannot_be_made(
    api: FakeTwilioApi, changes: dict[str, Any], call_sid: str | None
) -> None:
    rest, metrics = rest_for(api, **changes)
    with trio.fail_after(5), pytest.raises(ProviderError):
        await rest.transfer(call_sid)
    await rest.aclose()
    assert api.requests == []
    total = sum(
        count(metrics, "hana_provider_requests_total", action="transfer", result=result)
        for result in ("failed", "not_configured")
    )
    assert total == 1
