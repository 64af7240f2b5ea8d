"""The template source against a real PostgreSQL: cache, lookups at call start, bad templates,
and the database going away at start and mid-run."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import psycopg
import pytest
import trio

from hana_voice.frontend.source import SourceError, TemplateSource, TemplateUnavailable
from hana_voice.logs import JsonFormatter
from tests.frontend.database import SEEDED_TEMPLATE_ID, load_contract
from tests.postgres import PostgresServer, free_port

QUESTIONS = [{"id": "q1", "text": "هل أنت بخير؟", "order": 1, "type": "yes_no"}]


def insert(url: str, questions: Any, *, published: bool = True, name_ar: str = "قالب") -> str:
    template_id = str(uuid.uuid4())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO template_versions (template_id, name_ar, is_published, questions_json)"
            " VALUES (%s, %s, %s, %s::jsonb)",
            (template_id, name_ar, published, json.dumps(questions)),
        )
    return template_id


def source_for(url: str, **options: Any) -> TemplateSource:
    options.setdefault("timeout", 3.0)
    return TemplateSource(url, **options)


async def test_refresh_caches_every_published_template(postgres_url: str) -> None:
    load_contract(postgres_url)
    insert(postgres_url, QUESTIONS, published=False)
    source = source_for(postgres_url)
    with trio.fail_after(20):
        await source.refresh()
        health = source.health()
        assert (health["state"], health["templates"], health["refused"]) == ("ok", 1, 0)
        assert health["last_refresh"] is not None
        questionnaire = await source.get(SEEDED_TEMPLATE_ID.upper())
    assert questionnaire.id == SEEDED_TEMPLATE_ID
    assert len(questionnaire.questions) == 3
    await trio.to_thread.run_sync(source.slots.close)


async def test_a_template_published_after_the_refresh_runs_at_once(postgres_url: str) -> None:
    load_contract(postgres_url)
    source = source_for(postgres_url)
    with trio.fail_after(20):
        await source.refresh()
        fresh = insert(postgres_url, QUESTIONS)
        assert source.cached(fresh) is None
        questionnaire = await source.get(fresh)
        assert questionnaire.id == fresh
        assert source.cached(fresh) is questionnaire
    await trio.to_thread.run_sync(source.slots.close)


async def test_unpublished_unknown_and_malformed_templates_are_refused(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    load_contract(postgres_url)
    hidden = insert(postgres_url, QUESTIONS, published=False)
    broken = insert(postgres_url, [{"id": "q1", "text": "؟", "order": 1, "type": "slider"}])
    source = source_for(postgres_url)
    caplog.set_level(logging.INFO)
    with trio.fail_after(20):
        await source.refresh()
        assert source.health()["refused"] == 1
        with pytest.raises(TemplateUnavailable) as unpublished:
            await source.get(hidden)
        with pytest.raises(TemplateUnavailable) as unknown:
            await source.get(str(uuid.uuid4()))
        with pytest.raises(TemplateUnavailable) as malformed:
            await source.get(broken)
        with pytest.raises(TemplateUnavailable):
            await source.get(broken)  # a second call: no second log line
        await source.refresh()
    assert unpublished.value.code == "template_unpublished"
    assert str(unpublished.value) == f"template {hidden}: not published"
    assert unknown.value.code == "template_unknown"
    assert malformed.value.code == "template_malformed"
    assert "questions_json[0].type" in str(malformed.value)
    refusals = [r for r in caplog.records if r.getMessage() == "template.refused"]
    assert len(refusals) == 1
    line = JsonFormatter().format(refusals[0])
    assert broken in line and "questions_json[0].type" in line
    await trio.to_thread.run_sync(source.slots.close)


async def test_database_down_at_start() -> None:
    source = source_for(f"postgresql://postgres@127.0.0.1:{free_port()}/none", timeout=2.0)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(source.run)  # returns at once: start never waits
            await source.refreshed.wait()
            health = source.health()
            assert health["state"] == "unreachable"
            assert health["templates"] == 0 and health["last_refresh"] is None
            assert "Connection refused" in health["error"] or "connect" in health["error"]
            with pytest.raises(TemplateUnavailable) as caught:
                await source.get(SEEDED_TEMPLATE_ID)
            assert caught.value.code == "templates_unavailable"
            nursery.cancel_scope.cancel()


async def test_database_down_mid_run_and_back(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    load_contract(postgres_url)
    other = insert(postgres_url, QUESTIONS)
    source = source_for(postgres_url)
    try:
        with trio.fail_after(60):
            await source.refresh()
            await trio.to_thread.run_sync(postgres_server.stop)
            with pytest.raises(SourceError):
                await source.refresh()
            assert source.health()["state"] == "unreachable"
            # A cached template still runs; one never read gets a clear error.
            assert (await source.get(SEEDED_TEMPLATE_ID)).id == SEEDED_TEMPLATE_ID
            with pytest.raises(TemplateUnavailable) as caught:
                await source.get(str(uuid.uuid4()))
            assert caught.value.code == "templates_unavailable"
            await trio.to_thread.run_sync(postgres_server.start)
            # The pooled connection died with the server: it is replaced without an error.
            await source.refresh()
            assert source.health()["state"] == "ok"
            assert (await source.get(other)).id == other
    finally:
        if not postgres_server.running:
            postgres_server.start()
        await trio.to_thread.run_sync(source.slots.close)


async def test_lookups_never_block_the_event_loop(postgres_url: str) -> None:
    load_contract(postgres_url)
    source = source_for(postgres_url)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await trio.sleep(0.005)
            ticks += 1

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            with psycopg.connect(postgres_url, autocommit=True) as locker:
                # Hold a lock the lookup's query waits on; the loop must keep ticking.
                locker.execute("BEGIN")
                locker.execute("LOCK TABLE template_versions IN ACCESS EXCLUSIVE MODE")
                async with trio.open_nursery() as lookups:
                    lookups.start_soon(source.refresh)
                    await trio.sleep(0.5)
                    before = ticks
                    await trio.sleep(0.3)
                    assert ticks - before >= 10
                    locker.execute("COMMIT")
            nursery.cancel_scope.cancel()
    assert source.health()["templates"] == 1
    await trio.to_thread.run_sync(source.slots.close)
