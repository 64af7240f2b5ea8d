"""/metrics: Prometheus text with sessions, engines and call figures; disable and protect."""

from __future__ import annotations

from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders, live
from tests.conftest import run_server
from tests.wsclient import connect


async def test_metrics_report_sessions_and_calls(settings: Settings) -> None:
    loaders, _, _ = fake_loaders()
    async with run_server(live(settings, max_concurrent_sessions=1), loaders) as server:
        async with connect(server.ws_url + "/ws/tts") as client:
            await client.send_json({"type": "say", "text": "مرحبا بكم"})
            await client.until("audio.end")
            async with connect(server.ws_url + "/ws") as refused:
                await refused.closed()
        async with server.client() as http:
            text = (await http.get("/metrics")).text
    assert 'hana_sessions_refused_total{reason="busy"} 1.0' in text
    assert "hana_sessions_total 1.0" in text
    assert 'hana_engine_up{engine="espeak",kind="tts",state="loaded"} 1.0' in text
    assert "hana_tts_first_audio_seconds_count" in text
    assert 'hana_calls_ended_total{code="1000",kind="browser"}' in text
    assert "hana_outbox_backlog" in text


async def test_metrics_can_be_disabled_or_protected(settings: Settings) -> None:
    async with (
        run_server(settings.with_overrides(metrics_enabled=False)) as server,
        server.client() as http,
    ):
        assert (await http.get("/metrics")).status_code == 404
    token = "m" * 24
    async with (
        run_server(settings.with_overrides(metrics_token=token)) as server,
        server.client() as http,
    ):
        assert (await http.get("/metrics")).status_code == 401
        ok = await http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    assert "hana_sessions_live" in ok.text
