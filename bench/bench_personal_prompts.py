"""Start to first greeting audio, with and without personal parts (issue 14).

Run: .venv/bin/python bench/bench_personal_prompts.py [--samples 30]

A real server (Hypercorn's trio worker on loopback) with the REAL espeak-ng engine, its prompt
cache warmed with every fixed prompt (as start-up does), and the fake recogniser. Each sample
is a new call on /ws/healthcare-questionnaire, timed from sending ``start`` to the first byte
of audio:

- fixed: the shipped post_discharge_followup greeting, from the prompt cache;
- fallback: the worked example personal_followup without context values: its placeholders
  take the template's fallbacks, so the greeting is fixed and cached too;
- personal: personal_followup with a patient name, doctor and date (a different name each
  call): the identity question "am I speaking with <name>?" is synthesised while the call is
  set up (never cached), and so is the greeting after "yes" (timed from keying 1).

Also printed: espeak's time to synthesise a whole identity prompt on its own (what set-up
does per personal prompt). The greeting after "yes" includes the player's pacing: the identity
question's last 200 ms of audio (LEAD) are still playing when audio.end is sent.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio
from bench_reply_latency import bench_settings, percentiles, receive_json, running_server
from trio_websocket import ConnectionClosed, open_websocket_url

from hana_voice.engines.fake import FakeSpeechToText

PATH = "/ws/healthcare-questionnaire"
NAMES = [
    "سارة العتيبي",
    "محمد القحطاني",
    "نورة الشمري",
    "عبدالله الدوسري",
    "ريم الحربي",
    "خالد الزهراني",
    "هند المطيري",
    "فهد السبيعي",
    "لطيفة الغامدي",
    "سلمان العنزي",
]


async def first_audio(ws: Any) -> float:
    """Seconds until the next binary frame (audio), from now."""
    t0 = trio.current_time()
    while True:
        frame = await ws.get_message()
        if isinstance(frame, bytes):
            return trio.current_time() - t0


async def one_call(url: str, start: dict[str, Any], identity: bool) -> tuple[float, float | None]:
    async with open_websocket_url(url + PATH, max_message_size=1 << 25) as ws:
        await receive_json(ws, "ready")
        with trio.fail_after(30):
            await ws.send_message(json.dumps(start))
            first = await first_audio(ws)
            greeting = None
            if identity:
                await receive_json(ws, "audio.end")
                await ws.send_message(json.dumps({"type": "dtmf", "digit": "1"}))
                greeting = await first_audio(ws)
        with contextlib.suppress(ConnectionClosed):
            await ws.send_message(json.dumps({"type": "stop"}))
    return first, greeting


async def main(samples: int) -> None:
    stt = FakeSpeechToText([])
    with tempfile.TemporaryDirectory() as tmp:
        async with running_server(bench_settings(Path(tmp)), stt) as (url, services):
            tts = services.engines.require_tts()
            fixed_start = {"type": "start", "sample_rate": 16000}
            fallback_start = {**fixed_start, "questionnaire_id": "personal_followup"}
            await one_call(url, fixed_start, False)  # warm-up: imports, threads
            fixed = [(await one_call(url, fixed_start, False))[0] for _ in range(samples)]
            fallback = [(await one_call(url, fallback_start, False))[0] for _ in range(samples)]
            personal, greeting = [], []
            for i in range(samples):
                context = {
                    "patient_name": NAMES[i % len(NAMES)] + f" {i}",
                    "doctor_name": "د. خالد",
                    "appointment_date": "الأحد الماضي",
                }
                first, after = await one_call(url, {**fallback_start, "context": context}, True)
                personal.append(first)
                assert after is not None
                greeting.append(after)
            synth = []
            for i in range(min(samples, 10)):
                text = f"السلام عليكم، هل أتحدث مع {NAMES[i]}؟ قل نعم أو لا."
                t0 = time.perf_counter()
                for _ in tts.synthesize(text):
                    pass
                synth.append(time.perf_counter() - t0)
    print(f"start -> first greeting audio on {PATH}, TTS {tts.name}, prompt cache warm")
    print(f"  fixed greeting (cache):            {percentiles(fixed)}")
    print(f"  fallback greeting (cache):         {percentiles(fallback)}")
    print(f"  personal identity question:        {percentiles(personal)}")
    print(f"  personal greeting after yes (key): {percentiles(greeting)}")
    print(f"  espeak whole identity prompt:      {percentiles(synth)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()
    sys.exit(trio.run(main, args.samples))
