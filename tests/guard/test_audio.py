"""Caller audio in bounded pieces: slices, the real-time budget, the byte-bounded queue, and
the attack of issue 11 (huge frames stalled /health and other callers' reply audio)."""

from __future__ import annotations

import trio

from hana_voice.engines.fake import FakeTextToSpeech
from hana_voice.guard.audio import AudioBudget, AudioIntake, slices
from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders, live
from tests.calls.helpers import engines_ready
from tests.conftest import run_server
from tests.guard.attacks import Gaps, huge_frames, probe_health, victim


def test_slices_are_at_most_100_ms_on_sample_boundaries() -> None:
    pcm = bytes(range(256)) * 250  # 64000 bytes: 2 s at 16 kHz
    pieces = slices(pcm, 16000)
    assert b"".join(pieces) == pcm
    assert max(len(p) for p in pieces) == 3200
    assert all(len(p) % 2 == 0 for p in pieces)
    assert slices(b"\x00\x01" * 10, 8000) == [b"\x00\x01" * 10]


def test_budget_allows_real_time_and_a_burst_and_no_more() -> None:
    now = [0.0]
    budget = AudioBudget(2.0, clock=lambda: now[0])
    assert all(budget.take(0.1) for _ in range(20))  # the burst
    assert not budget.take(0.1)
    now[0] += 1.0
    assert sum(budget.take(0.1) for _ in range(20)) == 10  # then real time
    now[0] += 100.0
    assert sum(budget.take(0.1) for _ in range(40)) == 20  # idle time does not pile up


async def test_intake_queue_is_bounded_in_bytes() -> None:
    intake = AudioIntake(1000.0, max_queue_bytes=32000)
    offered = intake.offer(b"\x00" * 64000, 16000)
    assert round(offered.queued, 3) == 1.0 and round(offered.over_queue, 3) == 1.0
    assert intake.queued_bytes == 32000
    piece, rate, _, _ = await intake.__anext__()
    assert (len(piece), rate) == (3200, 16000)
    assert intake.queued_bytes == 32000 - 3200


async def test_fast_audio_is_held_to_real_time(settings: Settings) -> None:
    loaders, stt, _ = fake_loaders()
    settings = live(settings, audio_burst_seconds=1.0)
    async with run_server(settings, loaders) as server:
        await engines_ready(server)
        with trio.fail_after(20):
            codes = await huge_frames(server.ws_url, 200_000, 5)  # 31 s of audio at once
        assert "frame_too_large" not in codes
        with trio.fail_after(5):
            while stt.recognizers and not all(r.closed for r in stt.recognizers):
                await trio.sleep(0.02)
    fed = sum(r.fed_bytes for r in stt.recognizers) / 32000
    assert fed < 3.0, f"{fed:.1f} s of audio reached the recogniser"


async def test_huge_frames_do_not_stall_other_calls_or_health(settings: Settings) -> None:
    loaders, _, _ = fake_loaders(tts=FakeTextToSpeech(ms_per_char=20.0, chunk_ms=20))
    async with run_server(live(settings), loaders) as server:
        await engines_ready(server)
        gaps, stop, started = Gaps(), trio.Event(), trio.Event()
        latencies: list[float] = []
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(victim, server.ws_url, gaps, started)
                await started.wait()
                nursery.start_soon(probe_health, server.http_url, latencies, stop)
                codes = await huge_frames(server.ws_url, 4 * 1024 * 1024 - 4096, 20, mulaw_8k=True)
                stop.set()
        print("CODES", codes)
        assert gaps.ended
    assert gaps.max_gap < 0.4, f"reply audio stalled {gaps.max_gap:.2f} s"  # before: 0.7-0.8 s
    assert max(latencies) < 0.5, f"/health took {max(latencies):.2f} s"
