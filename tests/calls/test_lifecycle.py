"""How calls end: idle timeout, maximum call length, a client vanishing at every stage of a
questionnaire (no leaked sessions or recognisers), and the session cap across endpoints."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
import trio

from hana_voice.engines.fake import FakeSpeechToText, FakeTextToSpeech
from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders, live, spoken
from tests.calls.helpers import (
    all_recognizers_closed,
    engines_ready,
    hang_up,
    healthy,
    no_sessions_left,
    stream,
    wait_prompt,
)
from tests.conftest import SECRET, RunningServer, run_server
from tests.wsclient import Client, connect

QUESTIONNAIRE = "/ws/healthcare-questionnaire"


async def test_idle_call_ends_with_1000_and_says_why(settings: Settings) -> None:
    # Without pings (WS_PING_INTERVAL=0) the utility sockets end on the idle timeout too;
    # with them they stay open while the client answers (tests/calls/test_keepalive.py).
    settings = settings.with_overrides(idle_timeout=1.0, ws_ping_interval=0.0)
    async with run_server(settings) as server:
        async with connect(server.ws_url + "/ws") as client:
            await client.until("ready")
            code, reason = await client.closed(timeout=5)
        assert (code, reason) == (1000, "idle timeout: no audio or message for 1 s")
        async with connect(server.ws_url + "/ws/echo") as client:
            code, reason = await client.closed(timeout=5)
        assert (code, reason) == (1000, "idle timeout: no message for 1 s")
        await no_sessions_left(server)


@pytest.mark.slow  # ten seconds: the shortest maximum call length the settings accept
async def test_maximum_call_length_ends_the_call(settings: Settings) -> None:
    settings = settings.with_overrides(max_call_seconds=10.0)
    async with run_server(settings) as server, connect(server.ws_url + "/ws") as client:
        await client.until("ready")
        with trio.fail_after(15):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_keep_talking, client)
                code, reason = await client.closed(timeout=15)
                nursery.cancel_scope.cancel()
        assert (code, reason) == (1000, "maximum call length reached (10 s)")
    assert server.services.registry.active == 0


async def _keep_talking(client: Client) -> None:
    """Quiet audio every 20 ms, so the idle timeout is never what ends the call."""
    from trio_websocket import ConnectionClosed

    try:
        while True:
            await client.send(bytes(640))
            await trio.sleep(0.02)
    except ConnectionClosed:
        return


# ---------------------------------------------------------------- disconnect at every stage


async def _slow_store_write(server: RunningServer, entered: trio.Event) -> None:
    """Make answer writes take a second, and say when one has begun."""
    store = server.services.extras["store"]
    original = store.record_answer

    async def slow(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        await trio.sleep(1)
        return await original(*args, **kwargs)

    store.record_answer = slow


async def _to_stage(stage: str, server: RunningServer, client: Client) -> None:
    """Drive a questionnaire call to ``stage``; the caller then vanishes."""
    await client.until("ready")
    if stage == "before_start":
        return
    await client.send_json({"type": "start", "sample_rate": 16000})
    if stage == "after_ready":
        return
    await client.until("audio.start")
    if stage == "mid_prompt":
        return
    await client.until("audio.end")
    audio = spoken(16000)
    if stage == "mid_utterance":
        # The lead-in and half the voiced part: the recogniser is mid-utterance.
        await stream(client, audio[: 2 * int(16000 * 0.8)], 16000)
        return
    await client.send(audio)  # one frame: the listener takes any length
    await client.until("transcript")
    if stage == "after_answer":
        return
    assert stage == "store_write"
    entered = trio.Event()
    await _slow_store_write(server, entered)
    await wait_prompt(client)  # the first question
    await client.send_json({"type": "dtmf", "digit": "1"})
    with trio.fail_after(5):
        await entered.wait()


STAGES = ("before_start", "after_ready", "mid_prompt", "mid_utterance", "after_answer")


@pytest.mark.parametrize("abrupt", [False, True], ids=["close", "drop"])
@pytest.mark.parametrize("stage", [*STAGES, "store_write"])
async def test_disconnect_at_any_stage_leaks_nothing(
    settings: Settings, stage: str, abrupt: bool
) -> None:
    stt = FakeSpeechToText(["نعم"])
    loaders, _, _ = fake_loaders(stt=stt, tts=FakeTextToSpeech(ms_per_char=5, chunk_ms=20))
    async with run_server(live(settings), loaders) as server:
        await engines_ready(server)
        with trio.CancelScope() as dropped:
            async with connect(server.ws_url + QUESTIONNAIRE) as client:
                await _to_stage(stage, server, client)
                if abrupt:
                    # No close handshake: the TCP connection just goes, as a lost network
                    # does. Cancelling stops the client's reader, which may be blocked on
                    # frames nobody reads.
                    await client.ws._stream.aclose()  # no public API drops a connection
                    dropped.cancel()
                else:
                    await hang_up(client)
        await no_sessions_left(server)
        await all_recognizers_closed(stt)
        if stage in ("mid_utterance", "after_answer", "store_write"):
            assert stt.recognizers, "the stage reached the recogniser"
        await healthy(server)
        # The server still serves a new call normally.
        async with connect(server.ws_url + QUESTIONNAIRE) as again:
            await again.until("ready")
            await again.send_json({"type": "start", "sample_rate": 16000})
            await again.until("audio.start")
            await again.send_json({"type": "stop"})
            code, _ = await again.closed()
        assert code == 1000
        await no_sessions_left(server)
        await all_recognizers_closed(stt)


# ---------------------------------------------------------------- the session cap


async def test_session_cap_counts_every_browser_endpoint(settings: Settings) -> None:
    settings = settings.with_overrides(max_concurrent_sessions=3)
    bearer = [("Authorization", f"Bearer {SECRET}")]
    opened: list[tuple[str, list[tuple[str, str]] | None]] = [
        ("/ws/tts", None),
        ("/ws/secure", bearer),
        ("/ws/echo", None),
    ]
    async with run_server(settings) as server, AsyncExitStack() as stack:
        clients = []
        for path, headers in opened:
            client = await stack.enter_async_context(connect(server.ws_url + path, headers))
            await client.send_json({"type": "start"})
            await client.until("ready")
            clients.append(client)
        assert server.services.registry.active == 3
        for path, headers in (("/ws", None), ("/ws/secure/healthcare", bearer)):
            async with connect(server.ws_url + path, headers) as extra:
                code, reason = await extra.closed()
            assert (code, reason) == (1013, "server busy: 3/3 sessions"), path
        # One call ends: its place is free again.
        await clients[0].send_json({"type": "stop"})
        await clients[0].closed()
        await _wait(lambda: server.services.registry.active == 2)
        async with connect(server.ws_url + "/ws/secure", bearer) as late:
            await late.until("ready")
        assert server.services.registry.refused["busy"] == 2
    await no_sessions_left(server)


async def _wait(condition: Callable[[], bool], timeout: float = 5) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.02)
