"""Whole calls on a front-end template read from a real PostgreSQL: browser (authenticated),
Maqsam and Twilio-style; malformed and unpublished templates; the database down at start and
mid-run. The hand-over of the results to the front end's route is tested in tests/results."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import trio

from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders
from tests.conftest import SECRET, RunningServer
from tests.frontend.database import SEEDED_TEMPLATE_ID, load_contract
from tests.postgres import PostgresServer, free_port
from tests.telephony.peers import MaqsamPeer, TwilioPeer, keypad_caller, open_peer, prompt_name
from tests.telephony.support import (
    MAQSAM_AUTH,
    TELEPHONY_TOKEN,
    answers_of,
    no_sessions_left,
    stored_call,
    telephony_server,
)
from tests.wsclient import Client, connect

SECURE = "/ws/secure/healthcare"
BEARER = [("Authorization", f"Bearer {SECRET}")]
IDS = {
    "patient_id": "11111111-2222-3333-4444-555555555555",
    "hospital_id": "66666666-7777-8888-9999-000000000000",
}
#: Keys through the seeded template: consent, q1 yes, q2 rating 4, q3 no.
KEYS = {"greeting": "1", "q1": "1", "q2": "4", "q3": "2"}
EXPECTED = {"q1": "yes", "q2": "4", "q3": "no"}
#: The same answers as stored and handed over: in the template's own words.
STORED = {"q1": "نعم", "q2": "4", "q3": "لا"}
NAME_AR = "استبيان رضا المريض"


def insert(url: str, questions: Any, *, published: bool = True) -> str:
    template_id = str(uuid.uuid4())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO template_versions (template_id, name_ar, is_published, questions_json)"
            " VALUES (%s, 'قالب تجريبي', %s, %s::jsonb)",
            (template_id, published, json.dumps(questions)),
        )
    return template_id


@asynccontextmanager
async def frontend_server(
    settings: Settings, tmp_path: Path, database_url: str, **changes: Any
) -> AsyncIterator[RunningServer]:
    loaders, _, _ = fake_loaders()
    changes.setdefault("templates_refresh_seconds", 1.0)
    changes.setdefault("templates_timeout", 2.0)
    async with telephony_server(
        settings, tmp_path, loaders, templates_database_url=database_url, **changes
    ) as server:
        yield server


async def templates_state(
    server: RunningServer, wanted: str, timeout: float = 15
) -> dict[str, Any]:
    """Poll /health until the template source is in state ``wanted``; return /health."""
    with trio.fail_after(timeout):
        async with server.client() as http:
            while True:
                body: dict[str, Any] = (await http.get("/health")).json()
                if body["templates"]["state"] == wanted:
                    return body
                await trio.sleep(0.1)


async def prompt(client: Client) -> dict[str, Any]:
    start = await client.until("audio.start", timeout=15)
    end = await client.until("audio.end", timeout=15)
    assert end["id"] == start["id"]
    return start


async def test_browser_call_runs_the_seeded_template(
    settings: Settings, tmp_path: Path, postgres_url: str
) -> None:
    load_contract(postgres_url)
    async with frontend_server(settings, tmp_path, postgres_url) as server:
        with trio.fail_after(60):
            async with connect(server.ws_url + SECURE, BEARER) as client:
                await client.until("ready")
                context = {"template_id": SEEDED_TEMPLATE_ID, **IDS, "call_id": "web-1"}
                await client.send_json({"type": "start", "context": context})
                greeting = await prompt(client)
                assert NAME_AR in greeting["text"]
                await client.send_json({"type": "dtmf", "digit": "1"})
                assert (await prompt(client))["id"].endswith("q1")
                await client.send_json({"type": "text", "text": "نعم"})
                assert (await prompt(client))["id"].endswith("q2")
                await client.send_json({"type": "text", "text": "أربعة"})
                assert (await prompt(client))["id"].endswith("q3")
                # q3's list has no "not sure": the question is asked again.
                await client.send_json({"type": "text", "text": "لا أعرف"})
                assert (await prompt(client))["id"].endswith("q3")
                await client.send_json({"type": "text", "text": "لا"})
                result = (await client.until("result", timeout=20))["result"]
                code, _ = await client.closed()
        await no_sessions_left(server)
    assert code == 1000
    assert result["questionnaire_id"] == SEEDED_TEMPLATE_ID
    assert {a["question_id"]: str(a["response"]) for a in result["answers"]} == EXPECTED


async def test_maqsam_call_runs_the_seeded_template(
    settings: Settings, tmp_path: Path, postgres_url: str
) -> None:
    load_contract(postgres_url)
    async with frontend_server(settings, tmp_path, postgres_url) as server:
        with trio.fail_after(60):
            async with open_peer(MaqsamPeer, server.ws_url + "/ws/maqsam", MAQSAM_AUTH) as peer:
                await peer.setup({"template_id": SEEDED_TEMPLATE_ID, **IDS}, call_id="mq-tpl")
                peer.nursery.start_soon(peer.stream_line)
                await keypad_caller(peer, KEYS)
        assert peer.close_code == 1000
        assert [prompt_name(p.label or "") for p in peer.prompts] == [
            "greeting", "q1", "q2", "q3", "closing"
        ]  # fmt: skip
        stored = await stored_call(server, "mq-tpl")
        await no_sessions_left(server)
    assert stored["status"] == "completed"
    assert stored["template_id"] == SEEDED_TEMPLATE_ID
    assert answers_of(stored) == STORED
    assert stored["metadata"]["patient_id"] == IDS["patient_id"]


async def test_twilio_call_runs_a_template_published_a_moment_ago(
    settings: Settings, tmp_path: Path, postgres_url: str
) -> None:
    load_contract(postgres_url)
    questions = [
        {"id": "a", "text": "هل أخذت الدواء؟", "order": 1, "type": "yes_no",
         "expected_responses": ["نعم", "لا"]},
        {"id": "b", "text": "كيف حالك؟", "order": 2, "type": "multiple_choice",
         "expected_responses": ["أفضل", "نفس الحالة", "أسوأ"]},
    ]  # fmt: skip
    async with frontend_server(
        settings, tmp_path, postgres_url, templates_refresh_seconds=3600.0
    ) as server:
        await templates_state(server, "ok")
        fresh = insert(postgres_url, questions)  # after the only refresh: looked up at start
        url = f"{server.ws_url}/ws/telephony/healthcare?token={TELEPHONY_TOKEN}"
        with trio.fail_after(60):
            async with open_peer(TwilioPeer, url) as peer:
                await peer.setup({"template_id": fresh, **IDS}, call_sid="CA-tpl")
                peer.nursery.start_soon(peer.stream_line)
                await keypad_caller(peer, {"greeting": "1", "a": "1", "b": "3"})
        assert peer.close_reason == "questionnaire ended: completed"
        stored = await stored_call(server, "CA-tpl")
        await no_sessions_left(server)
    assert stored["template_id"] == fresh
    assert answers_of(stored) == {"a": "نعم", "b": "أسوأ"}


@pytest.mark.parametrize(
    ("questions", "published", "code", "words"),
    [
        ([{"id": "q", "text": "؟", "order": 1, "type": "slider"}], True,
         "template_malformed", "questions_json[0].type"),
        ([{"id": "q", "text": "؟", "order": 1, "type": "rating", "min_rating": 3,
           "max_rating": 1}], True, "template_malformed", "questions_json[0].max_rating"),
        ([{"id": "q", "text": "؟", "order": 1, "type": "yes_no"}], False,
         "template_unpublished", "not published"),
    ],
    ids=["unknown-type", "min-over-max", "unpublished"],
)  # fmt: skip
async def test_browser_call_on_a_bad_template_is_closed_with_the_reason(
    settings: Settings,
    tmp_path: Path,
    postgres_url: str,
    questions: Any,
    published: bool,
    code: str,
    words: str,
) -> None:
    load_contract(postgres_url)
    template_id = insert(postgres_url, questions, published=published)
    async with frontend_server(settings, tmp_path, postgres_url) as server:
        with trio.fail_after(30):
            async with connect(server.ws_url + SECURE, BEARER) as client:
                await client.until("ready")
                await client.send_json({"type": "start", "template_id": template_id})
                error = await client.until("error")
                close_code, reason = await client.closed()
        await no_sessions_left(server)
        await templates_state(server, "ok")  # the server is fine
    assert error["code"] == code
    assert close_code == 1008
    assert reason is not None and template_id in reason and words in reason


async def test_phone_call_on_an_unpublished_template_hears_an_apology_then_hang_up(
    settings: Settings, tmp_path: Path, postgres_url: str
) -> None:
    load_contract(postgres_url)
    questions = [{"id": "q", "text": "؟", "order": 1, "type": "yes_no"}]
    hidden = insert(postgres_url, questions, published=False)
    async with frontend_server(settings, tmp_path, postgres_url) as server:
        with trio.fail_after(30):
            async with open_peer(MaqsamPeer, server.ws_url + "/ws/maqsam", MAQSAM_AUTH) as peer:
                await peer.setup({"template_id": hidden}, call_id="mq-hidden")
                await peer.closed.wait()
        await no_sessions_left(server)
    assert peer.close_code == 1000
    assert len(peer.prompts) == 1, "one short apology, nothing else"
    apology = peer.prompts[0]
    assert apology.heard_at is not None and peer.hung_up_at is not None
    assert peer.hung_up_at >= apology.heard_at
    assert peer.types()[-1] == "hangup"


async def test_database_down_at_start(settings: Settings, tmp_path: Path) -> None:
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/frontend"
    async with frontend_server(settings, tmp_path, down) as server:
        body = await templates_state(server, "unreachable")
        assert body["status"] == "degraded"  # fake engines are loaded: templates degrade it
        assert body["templates"]["templates"] == 0
        with trio.fail_after(30):
            # Local questionnaires keep working...
            async with connect(server.ws_url + SECURE, BEARER) as client:
                await client.until("ready")
                await client.send_json({"type": "start"})
                greeting = await prompt(client)
                assert greeting["id"].endswith("greeting")
                await client.send_json({"type": "stop"})
                await client.closed()
            # ...and a call on a front-end template gets a clear error.
            async with connect(server.ws_url + SECURE, BEARER) as client:
                await client.until("ready")
                await client.send_json({"type": "start", "template_id": SEEDED_TEMPLATE_ID})
                error = await client.until("error")
                code, reason = await client.closed()
        await no_sessions_left(server)
    assert error["code"] == "templates_unavailable"
    assert code == 1008 and reason is not None and "unreachable" in reason


async def test_database_down_mid_run_then_back(
    settings: Settings, tmp_path: Path, postgres_server: PostgresServer, postgres_url: str
) -> None:
    load_contract(postgres_url)
    try:
        async with frontend_server(settings, tmp_path, postgres_url) as server:
            body = await templates_state(server, "ok")
            assert body["status"] == "healthy" and body["templates"]["templates"] == 1
            fresh = insert(postgres_url, [{"id": "q", "text": "؟", "order": 1, "type": "yes_no"}])
            await trio.to_thread.run_sync(postgres_server.stop)
            body = await templates_state(server, "unreachable")
            assert body["status"] == "degraded"
            assert body["templates"]["templates"] == 1, "the cache is kept"
            with trio.fail_after(30):
                # The cached template still runs.
                async with connect(server.ws_url + SECURE, BEARER) as client:
                    await client.until("ready")
                    await client.send_json({"type": "start", "template_id": SEEDED_TEMPLATE_ID})
                    assert NAME_AR in (await prompt(client))["text"]
                    await client.send_json({"type": "stop"})
                    await client.closed()
                # One it never read gets a clear error.
                async with connect(server.ws_url + SECURE, BEARER) as client:
                    await client.until("ready")
                    await client.send_json({"type": "start", "template_id": fresh})
                    error = await client.until("error")
                    code, _ = await client.closed()
            assert (error["code"], code) == ("templates_unavailable", 1008)
            await trio.to_thread.run_sync(postgres_server.start)
            body = await templates_state(server, "ok")
            assert body["status"] == "healthy" and body["templates"]["templates"] == 2
            await no_sessions_left(server)
    finally:
        if not postgres_server.running:
            postgres_server.start()


async def test_health_without_a_template_database(settings: Settings, tmp_path: Path) -> None:
    loaders, _, _ = fake_loaders()
    async with telephony_server(settings, tmp_path, loaders) as server:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
            body = (await http.get("/health")).json()
        with trio.fail_after(20):
            async with connect(server.ws_url + SECURE, BEARER) as client:
                await client.until("ready")
                await client.send_json({"type": "start", "template_id": SEEDED_TEMPLATE_ID})
                error = await client.until("error")
                code, reason = await client.closed()
    assert "templates" not in body and body["status"] == "healthy"
    assert error["code"] == "templates_not_configured"
    assert code == 1008 and reason is not None and "TEMPLATES_DATABASE_URL" in reason
