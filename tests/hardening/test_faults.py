"""Engines that fail or hang mid-call, and callers that vanish at every stage of a call.

Each test runs a real server with fake engines. A failing engine must cost the call an
``error`` message, not the call: the questionnaire goes on by keypad and completes, and calls
running beside it are untouched. A caller that vanishes leaves no session or recogniser
behind, and the answers given so far are stored with the call marked incomplete.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import trio

from hana_voice.engines.fake import FakeRecognizer, FakeSpeechToText, FakeTextToSpeech
from hana_voice.errors import EngineError
from hana_voice.events import Transcript
from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders, live, spoken
from tests.calls.helpers import (
    all_recognizers_closed,
    engines_ready,
    healthy,
    no_sessions_left,
    stream,
    wait_prompt,
)
from tests.conftest import RunningServer, run_server
from tests.hardening.support import (
    ANSWER_COUNT,
    QUESTIONNAIRE,
    answer_the_rest,
    settled,
    start_and_consent,
)
from tests.wsclient import Client, connect


class BrokenRecognizer(FakeRecognizer):
    """Fails on the first audio it is fed (or sleeps ``hang_s`` first: a hung decoder)."""

    def __init__(self, stt: FakeSpeechToText, sample_rate: int, phrases: list[str] | None):
        super().__init__(stt, sample_rate, phrases)
        self.hang_s = getattr(stt, "hang_s", 0.0)

    def accept(self, pcm: bytes) -> Transcript | None:
        if self.hang_s:
            time.sleep(self.hang_s)
            return super().accept(pcm)
        raise EngineError("fake decoder crashed")


class BrokenSpeechToText(FakeSpeechToText):
    """Creates :class:`BrokenRecognizer` s; ``hang_s`` > 0 makes them hang instead of fail."""

    def __init__(self, hang_s: float = 0.0) -> None:
        super().__init__()
        self.hang_s = hang_s

    def create_recognizer(
        self, sample_rate: int, phrases: Sequence[str] | None = None
    ) -> FakeRecognizer:
        recognizer = BrokenRecognizer(self, sample_rate, None if phrases is None else [*phrases])
        self.recognizers.append(recognizer)
        return recognizer


class OnceSlowTextToSpeech(FakeTextToSpeech):
    """Hangs ``hang_s`` on its first synthesis only (one call's greeting), then is quick."""

    def __init__(self, hang_s: float) -> None:
        super().__init__(ms_per_char=1.0, chunk_ms=20)
        self.hang_s = hang_s
        self.hung = False

    def synthesize(self, text: str) -> Iterator[bytes]:
        if not self.hung:
            self.hung = True
            time.sleep(self.hang_s)
        return super().synthesize(text)


def errors(client: Client) -> list[dict[str, Any]]:
    return [m for m in client.messages if m.get("type") == "error"]


async def completed_call(server: RunningServer, *, speak_first: bool = False) -> Client:
    """One whole keypad call (optionally speaking to the recogniser after the greeting)."""
    async with connect(server.ws_url + QUESTIONNAIRE) as client:
        session_id = await start_and_consent(client)
        if speak_first:
            await wait_prompt(client)
            await stream(client, spoken(16000), 16000, realtime=False)
            await client.until("error")
            # The question again, then on by keypad as if nothing had happened.
            await client.send_json({"type": "dtmf", "digit": "*"})
        result = await answer_the_rest(client)
        code, _ = await client.closed()
    assert code == 1000
    assert result["outcome"] == "completed"
    stored = await settled(server.services.extras["store"], session_id)
    assert stored["status"] == "completed"
    assert len(stored["answers"]) == ANSWER_COUNT
    return client


async def calls_side_by_side(server: RunningServer, count: int, **options: Any) -> list[Client]:
    clients: list[Client] = []

    async def one() -> None:
        clients.append(await completed_call(server, **options))

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for _ in range(count):
                nursery.start_soon(one)
    await no_sessions_left(server)
    await healthy(server)
    return clients


async def test_synthesis_failing_mid_prompt_costs_an_error_not_the_call(
    settings: Settings,
) -> None:
    tts = FakeTextToSpeech(ms_per_char=1.0, chunk_ms=20, fail_after_chunks=1)
    loaders, _, _ = fake_loaders(tts=tts)
    async with run_server(live(settings), loaders) as server:
        await engines_ready(server)
        clients = await calls_side_by_side(server, 3)
    for client in clients:
        assert errors(client), "each prompt's failure was reported"
        assert {e["code"] for e in errors(client)} == {"engine_error"}


async def test_recogniser_failing_costs_an_error_not_the_call(settings: Settings) -> None:
    stt = BrokenSpeechToText()
    loaders, _, _ = fake_loaders(stt=stt)
    async with run_server(live(settings), loaders) as server:
        await engines_ready(server)
        clients = await calls_side_by_side(server, 3, speak_first=True)
        await all_recognizers_closed(stt)
    assert stt.recognizers, "the recogniser was reached"
    for client in clients:
        # One error per failed utterance; the listener tries a fresh recogniser at the next.
        assert errors(client)
        assert {e["code"] for e in errors(client)} == {"engine_error"}


async def test_hung_recogniser_times_out_and_the_calls_go_on(settings: Settings) -> None:
    stt = BrokenSpeechToText(hang_s=1.5)
    loaders, _, _ = fake_loaders(stt=stt)
    async with run_server(live(settings, processing_timeout=0.5), loaders) as server:
        await engines_ready(server)
        clients = await calls_side_by_side(server, 2, speak_first=True)
        # Freed only once the abandoned thread lets go of it.
        await all_recognizers_closed(stt, timeout=10)
    for client in clients:
        assert errors(client)
        assert {e["code"] for e in errors(client)} == {"engine_timeout"}


async def test_hung_synthesis_times_out_one_call_and_the_others_complete(
    settings: Settings,
) -> None:
    tts = OnceSlowTextToSpeech(hang_s=2.0)
    loaders, _, _ = fake_loaders(tts=tts)
    async with run_server(live(settings, processing_timeout=0.5), loaders) as server:
        await engines_ready(server)
        clients = await calls_side_by_side(server, 3)
    codes = sorted(e["code"] for c in clients for e in errors(c))
    assert codes and set(codes) == {"engine_timeout"}
    assert any(not errors(c) for c in clients), "a call beside the hung one was untouched"


# ------------------------------------------------------------------ vanishing callers


async def _vanish(server: RunningServer, stage: str) -> tuple[str | None, list[str]]:
    """Run a call up to ``stage`` and drop the connection; return (session id, answered ids
    the server had confirmed by moving on)."""
    async with connect(server.ws_url + QUESTIONNAIRE) as client:
        ready = await client.until("ready")
        if stage == "before_start":
            return None, []
        await client.send_json({"type": "start", "sample_rate": 16000})
        await client.until("audio.start")
        if stage == "mid_greeting":
            return ready["session_id"], []
        await client.until("audio.end")
        await client.send_json({"type": "dtmf", "digit": "1"})  # consent
        await wait_prompt(client)  # the first question
        if stage == "mid_answer":
            pcm = spoken(16000)
            await stream(client, pcm[: len(pcm) // 3], 16000, realtime=False)
            return ready["session_id"], []
        await client.send_json({"type": "dtmf", "digit": "1"})
        if stage == "right_after_answering":
            return ready["session_id"], ["medication_adherence"]
        await wait_prompt(client)
        await client.send_json({"type": "dtmf", "digit": "2"})
        await client.until("audio.start")
        return ready["session_id"], ["medication_adherence", "chest_pain_or_breathlessness"]


@pytest.mark.parametrize(
    "stage", ["before_start", "mid_greeting", "mid_answer", "right_after_answering", "later"]
)
async def test_caller_vanishing_leaves_nothing_behind_and_keeps_answers(
    settings: Settings, stage: str
) -> None:
    loaders, stt, _ = fake_loaders(tts=FakeTextToSpeech(ms_per_char=2.0, chunk_ms=20))
    async with run_server(live(settings), loaders) as server:
        await engines_ready(server)
        with trio.fail_after(30):
            session_id, answered = await _vanish(server, stage)
            await no_sessions_left(server)
            await all_recognizers_closed(stt)
            store = server.services.extras["store"]
            if session_id is None:
                assert (await store.backlog())["pending_config"] == 0
            else:
                stored = await settled(store, session_id)
                assert stored["status"] == "incomplete"
                assert [a["question_id"] for a in stored["answers"]] == answered
            # The server takes the next caller as if nothing happened.
            async with connect(server.ws_url + QUESTIONNAIRE) as client:
                await start_and_consent(client)
                await wait_prompt(client)
        await healthy(server)
        assert store.unwritten == 0
