"""The attack of issue 11 against a real recogniser (the small Korean Vosk model): callers
flooding audio leave no recogniser thread busy once they have gone, the engine limiter frees
up, and synthesis (which needs the limiter) keeps working."""

from __future__ import annotations

from typing import Any, cast

import pytest
import trio

from hana_voice.engines.fake import FakeTextToSpeech
from hana_voice.engines.manager import Loaders
from hana_voice.engines.vosk_stt import VoskSpeechToText, load_vosk
from hana_voice.settings import Settings
from tests.calls.fakes import live
from tests.calls.helpers import engines_ready
from tests.conftest import RunningServer, run_server
from tests.engines.conftest import KO_MODEL
from tests.guard.attacks import huge_frames
from tests.wsclient import connect

pytestmark = pytest.mark.slow

#: Seconds within which the attackers' recogniser threads must have returned.
BOUND = 20.0


@pytest.fixture(scope="module")
def vosk_ko() -> VoskSpeechToText:
    return load_vosk(KO_MODEL)


def _loaders(stt: VoskSpeechToText) -> Loaders:
    tts = FakeTextToSpeech(ms_per_char=1.0, chunk_ms=20)
    return Loaders(
        stt=cast(Any, lambda settings: stt),
        espeak=cast(Any, lambda settings: tts),
        xtts=cast(Any, lambda settings: tts),
        xtts_present=lambda settings: False,
    )


async def _tts_answers(server: RunningServer) -> None:
    async with connect(server.ws_url + "/ws/tts") as client:
        await client.send_json({"type": "start"})
        await client.until("ready")
        await client.send_json({"type": "say", "text": "مرحبا", "id": "t"})
        await client.until("audio.end", timeout=5)


@pytest.mark.parametrize("frame_bytes", [4 * 1024 * 1024 - 4096, 200_000], ids=["huge", "fast"])
async def test_flooding_callers_free_the_recogniser_threads_when_they_leave(
    settings: Settings, vosk_ko: VoskSpeechToText, frame_bytes: int
) -> None:
    settings = live(settings, max_concurrent_sessions=12, processing_timeout=60.0)
    async with run_server(settings, _loaders(vosk_ko)) as server:
        await engines_ready(server)
        runner = server.services.runner
        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                for _ in range(10):
                    nursery.start_soon(huge_frames, server.ws_url, frame_bytes, 8)
            left = trio.current_time()
            # The attackers have gone: their recogniser work must end within a bounded time.
            # At most one feed of <= 0.5 s of audio per call is in flight, but ten Vosk threads
            # share two busy cores here, and Vosk's worst single 100 ms feed took 2.4 s on
            # this machine: a generous bound (before: minutes, one feed held minutes of audio).
            with trio.move_on_after(BOUND):
                while runner.limiter.borrowed_tokens or runner.busy_beyond_call:
                    await trio.sleep(0.05)
            freed_after = trio.current_time() - left
            busy = runner.limiter.borrowed_tokens
            async with server.client() as http:
                health = (await http.get("/health")).json()
            await _tts_answers(server)
        assert busy == 0, f"{busy} engine threads still busy {freed_after:.1f} s after"
        assert health["engine_threads"]["busy_beyond_call"] == 0
        assert freed_after < BOUND
