"""Bad input on the browser endpoints: each is answered with an ``error`` naming the problem
(or the documented close code), the call goes on or ends cleanly, and other calls and /health
are not affected."""

from __future__ import annotations

from typing import Any

import trio

from hana_voice.engines.fake import FakeTextToSpeech
from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders, live
from tests.calls.helpers import engines_ready, healthy, no_sessions_left
from tests.conftest import RunningServer, run_server
from tests.wsclient import Client, connect


async def _still_answers(client: Client) -> None:
    """The call is alive: a typed text comes back as a final transcript."""
    await client.send_json({"type": "text", "text": "ما زلت هنا"})
    echo = await client.until("transcript")
    assert echo["text"] == "ما زلت هنا"


async def _healthy_call(server: RunningServer, done: trio.Event) -> None:
    """A well-behaved /ws/tts call that keeps being served while another misbehaves."""
    async with connect(server.ws_url + "/ws/tts") as client:
        await client.send_json({"type": "start"})
        await client.until("ready")
        count = 0
        while not done.is_set() or count < 2:
            await client.send_json({"type": "say", "text": "مرحبا", "id": f"ok{count}"})
            await client.until("audio.start")
            end = await client.until("audio.end")
            assert end == {"type": "audio.end", "id": f"ok{count}", "interrupted": False}
            count += 1
        await client.send_json({"type": "stop"})
        code, _ = await client.closed()
        assert code == 1000


async def test_non_fatal_errors_are_named_and_the_call_goes_on(settings: Settings) -> None:
    settings = settings.with_overrides(max_tts_chars=50)
    bad: list[tuple[str | bytes, str]] = [
        ("this is not json", "invalid_json"),
        ("UklGRiQAAABXQVZFZm10IBAAAAABAAEAgD4AAAB9AAACABAAZGF0YQAAAAA=", "invalid_json"),
        ('["start"]', "bad_message"),
        ('{"kind": "say"}', "bad_message"),
        ('{"type": "audio", "data": "AAAA"}', "unknown_type"),
        ('{"type": "dtmf"}', "bad_dtmf"),
        ('{"type": "dtmf", "digit": "A"}', "bad_dtmf"),
        ('{"type": "say"}', "bad_message"),
        ('{"type": "say", "text": 5}', "bad_message"),
        ('{"type": "say", "text": "   "}', "empty_text"),
        ('{"type": "say", "text": "' + "م" * 51 + '"}', "text_too_long"),
        ('{"type": "start", "sample_rate": 16000}', "duplicate_start"),
        (b"\x00\x01\x02", "bad_audio"),
    ]
    loaders, _, _ = fake_loaders()
    async with run_server(live(settings), loaders) as server:
        await engines_ready(server)
        done = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_healthy_call, server, done)
            async with connect(server.ws_url + "/ws") as client:
                await client.send_json({"type": "start", "sample_rate": 16000})
                await client.until("ready")
                for frame, code in bad:
                    await client.send(frame)
                    error = await client.until("error")
                    assert error["code"] == code, frame
                    assert error["message"], "the message explains the problem"
                await client.send(b"")  # empty audio is no audio: nothing to answer
                await _still_answers(client)
                await healthy(server)
                await client.send_json({"type": "stop"})
                code_, _ = await client.closed()
                assert code_ == 1000
            done.set()
        await no_sessions_left(server)


async def _fatal(server: RunningServer, path: str, first: dict[str, Any]) -> tuple[Any, ...]:
    async with connect(server.ws_url + path) as client:
        await client.send_json(first)
        return await client.closed()


async def test_unsupported_formats_close_with_1008_and_a_reason(settings: Settings) -> None:
    async with run_server(settings) as server:
        code, reason = await _fatal(server, "/ws", {"type": "start", "sample_rate": 11025})
        assert code == 1008
        assert reason == (
            "start.sample_rate must be one of 8000, 16000, 22050, 24000, 44100, 48000"
        )
        code, reason = await _fatal(server, "/ws/tts", {"type": "start", "encoding": "opus"})
        assert code == 1008
        assert reason is not None and reason.startswith("start.encoding must be one of")
        code, reason = await _fatal(
            server, "/ws/secure", {"type": "start", "output_encoding": "mp3"}
        )
        assert code == 1008  # authentication is refused first: same code, its own reason
        await healthy(server)
    assert server.services.registry.active == 0


async def test_frames_over_the_size_limit_close_with_1009(settings: Settings) -> None:
    settings = settings.with_overrides(max_message_bytes=4096)
    async with run_server(settings) as server:
        async with connect(server.ws_url + "/ws") as client:
            await client.until("ready")
            await client.send(bytes(4000))  # under the limit: fine
            await client.send(bytes(8192))
            code, _ = await client.closed()
        assert code == 1009
        await no_sessions_left(server)
        await healthy(server)


async def test_engine_failing_mid_utterance_is_reported_and_the_call_goes_on(
    settings: Settings,
) -> None:
    tts = FakeTextToSpeech(ms_per_char=60, chunk_ms=20, fail_after_chunks=1)
    loaders, _, _ = fake_loaders(tts=tts)
    async with run_server(live(settings), loaders) as server:
        await engines_ready(server)
        async with connect(server.ws_url + "/ws") as client:
            await client.until("ready")
            await client.send_json({"type": "say", "text": "مرحبا بك", "id": "s1"})
            error = await client.until("error")
            end = await client.until("audio.end")
            tts.fail_after_chunks = None
            await client.send_json({"type": "say", "text": "مرحبا", "id": "s2"})
            again = await client.until("audio.end")
            await _still_answers(client)
            await client.send_json({"type": "stop"})
            code, _ = await client.closed()
        assert error["code"] == "engine_error"
        assert error["message"].startswith("speech synthesis failed")
        assert end == {"type": "audio.end", "id": "s1", "interrupted": False}
        assert again["id"] == "s2"
        assert code == 1000


async def test_hanging_engine_times_out_and_the_call_goes_on(settings: Settings) -> None:
    settings = settings.with_overrides(processing_timeout=0.5)
    tts = FakeTextToSpeech(ms_per_char=60, chunk_ms=20, chunk_delay_s=5)
    loaders, _, _ = fake_loaders(tts=tts)
    async with run_server(live(settings), loaders) as server:
        await engines_ready(server)
        async with connect(server.ws_url + "/ws") as client:
            await client.until("ready")
            started = trio.current_time()
            await client.send_json({"type": "say", "text": "مرحبا", "id": "slow"})
            error = await client.until("error")
            waited = trio.current_time() - started
            end = await client.until("audio.end")
            await _still_answers(client)
            await healthy(server)
            await client.send_json({"type": "stop"})
            code, _ = await client.closed()
        assert error["code"] == "engine_timeout"
        assert waited < 2, "the timeout, not the engine, decides"
        assert end["id"] == "slow"
        assert code == 1000
