"""What the front end's browser pages need from the sockets: the voice tester's /ws/echo and
/ws/tts kept open by ping/pong (a peer that stops answering is closed), "no speech detected"
on the legacy echo, questionnaires that greet without ``start``, and /ws/maqsam/test."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import wsproto
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Event,
    Ping,
    Request,
    TextMessage,
)

from hana_voice.audio.wav import write_wav
from hana_voice.calls.keepalive import PING_TIMEOUT_CODE, PING_TIMEOUT_REASON
from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders, live, spoken
from tests.calls.helpers import engines_ready, no_sessions_left, receive
from tests.conftest import RunningServer, run_server
from tests.telephony.peers import MaqsamPeer, open_peer, prompt_name
from tests.telephony.support import MAQSAM_AUTH, MAQSAM_TOKEN, telephony_server
from tests.wsclient import connect


async def _silent_peer(server: RunningServer, path: str, seconds: float) -> list[Event]:
    """Open ``path`` with a raw wsproto client that never answers pings; after ``seconds``
    read what the server sent meanwhile (the peer of a browser tab that froze)."""
    host, port = server.http_url.removeprefix("http://").split(":")
    stream = await trio.open_tcp_stream(host, int(port))
    events: list[Event] = []
    try:
        ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        await stream.send_all(ws.send(Request(host=host, target=path)))
        while not any(isinstance(e, AcceptConnection) for e in events):
            ws.receive_data(await stream.receive_some())
            events.extend(ws.events())
        await trio.sleep(seconds)  # reads nothing, so answers no ping
        with trio.move_on_after(5):
            while not any(isinstance(e, CloseConnection) for e in events):
                data = await stream.receive_some()
                ws.receive_data(data or None)
                events.extend(ws.events())
                if not data:
                    break
    finally:
        await stream.aclose()
    return events


@pytest.mark.parametrize("path", ["/ws/echo", "/ws/tts"])
async def test_utility_sockets_stay_open_while_the_client_answers_pings(
    settings: Settings, path: str
) -> None:
    settings = live(settings, idle_timeout=1.0, ws_ping_interval=0.3)
    loaders, stt, _ = fake_loaders()
    stt.say("نعم")
    async with run_server(settings, loaders) as server:
        await engines_ready(server)
        async with connect(server.ws_url + path) as client:
            # trio-websocket answers pings by itself: quiet for well past IDLE_TIMEOUT.
            await trio.sleep(2.5)
            if path == "/ws/tts":
                await client.send("tts:مرحبا")
                reply = await receive(client)
                assert isinstance(reply, bytes) and reply.startswith(b"RIFF")
            else:
                await client.send(write_wav(spoken(16000), 16000))
                assert await receive(client) == "transcription: نعم"
            assert server.services.registry.active == 1
        await no_sessions_left(server)


@pytest.mark.parametrize("path", ["/ws/echo", "/ws/tts"])
async def test_a_peer_that_stops_answering_pings_is_closed(settings: Settings, path: str) -> None:
    settings = settings.with_overrides(idle_timeout=60.0, ws_ping_interval=0.3)
    async with run_server(settings) as server:
        with trio.fail_after(20):
            events = await _silent_peer(server, path, 1.5)
            await no_sessions_left(server)
    assert any(isinstance(e, Ping) for e in events)
    closes = [e for e in events if isinstance(e, CloseConnection)]
    assert closes and (closes[0].code, closes[0].reason) == (PING_TIMEOUT_CODE, PING_TIMEOUT_REASON)


async def test_calls_are_not_pinged_and_keep_the_idle_timeout(settings: Settings) -> None:
    settings = settings.with_overrides(idle_timeout=1.0, ws_ping_interval=0.3)
    async with run_server(settings) as server:
        with trio.fail_after(20):
            events = await _silent_peer(server, "/ws", 1.6)
    assert not any(isinstance(e, Ping) for e in events)
    closes = [e for e in events if isinstance(e, CloseConnection)]
    assert closes and closes[0].code == 1000 and "idle timeout" in (closes[0].reason or "")
    assert any(isinstance(e, TextMessage) and '"ready"' in e.data for e in events)


async def test_legacy_echo_without_speech_says_so(settings: Settings) -> None:
    loaders, stt, _ = fake_loaders()
    stt.say("")  # the recogniser hears nothing in it
    async with run_server(live(settings), loaders) as server:
        await engines_ready(server)
        async with connect(server.ws_url + "/ws/echo") as client:
            await client.send(write_wav(b"\x00\x00" * 16000, 16000))
            reply = await receive(client)
        await no_sessions_left(server)
    assert reply == "error: no speech detected"


@pytest.mark.parametrize("start", [False, True], ids=["no-start", "start-at-once"])
async def test_questionnaire_greets_by_itself(settings: Settings, start: bool) -> None:
    loaders, _, _ = fake_loaders()
    async with run_server(live(settings, start_grace_seconds=0.3), loaders) as server:
        await engines_ready(server)
        async with connect(server.ws_url + "/ws/healthcare-questionnaire") as client:
            if start:  # a start sent at once still applies (here: mu-law at 8 kHz out)
                await client.send_json(
                    {"type": "start", "sample_rate": 8000, "output_encoding": "mulaw"}
                )
            ready = await client.until("ready")
            with trio.fail_after(5):
                greeting = await client.until("audio.start")
            assert greeting["id"].endswith("greeting")
            assert greeting["sample_rate"] == (8000 if start else 16000)
            assert greeting["encoding"] == ("mulaw" if start else "pcm_s16le")
            # Consent by key: the dialog runs on with the defaults.
            await client.until("audio.end")
            await client.send_json({"type": "dtmf", "digit": "1"})
            question = await client.until("audio.start")
            assert question["id"].endswith("medication_adherence")
            if not start:
                # Too late for start: refused, not fatal.
                await client.send_json({"type": "start", "sample_rate": 8000})
                error = await client.until("error")
                assert error["code"] == "duplicate_start"
            await client.send_json({"type": "stop"})
            await client.closed()
        assert ready["session_id"]
        await no_sessions_left(server)


def _setup(api_key: str | None) -> str:
    message: dict[str, Any] = {
        "type": "session.setup",
        "data": {"context": {"id": "test-call-1", "direction": "outbound", "custom": {}}},
    }
    if api_key is not None:
        message["apiKey"] = api_key
    return json.dumps(message)


async def test_maqsam_test_endpoint_runs_the_default_questionnaire(
    settings: Settings, tmp_path: Any
) -> None:
    loaders, _, _ = fake_loaders()
    async with telephony_server(settings, tmp_path, loaders) as server:
        url = server.ws_url + "/ws/maqsam/test?token=anything"
        with trio.fail_after(30):
            # The test-call page: apiKey in session.setup.
            async with open_peer(MaqsamPeer, url) as peer:
                await peer.send(_setup(MAQSAM_TOKEN))
                await peer.ready.wait()
                label = await peer.heard.receive()
                assert prompt_name(label) == "greeting"
                await peer.hang_up()
            # Same authentication as /ws/maqsam: header accepted, a wrong apiKey closed 1002.
            async with open_peer(MaqsamPeer, url, MAQSAM_AUTH) as peer:
                await peer.send(_setup(None))
                await peer.ready.wait()
                await peer.hang_up()
            async with open_peer(MaqsamPeer, url) as peer:
                await peer.send(_setup("wrong-key"))
                await peer.closed.wait()
            assert peer.close_code == 1002
        await no_sessions_left(server)
