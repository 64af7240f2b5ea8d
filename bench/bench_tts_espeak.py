"""espeak-ng synthesis: time to the first audio chunk and real-time factor.

Run: .venv/bin/python bench/bench_tts_espeak.py [--runs 30]

Three Arabic texts (a short prompt, a sentence, a paragraph of ~20 sentences), each
synthesised ``runs`` times directly (the adapter's generator in this thread) and through
synthesize_stream over EngineRunner in trio (what the call session uses). First chunk: from
the call to the first PCM chunk. RTF: time to the last chunk over the audio's duration.
"Collect" is the time to the last chunk, which a non-streaming adapter would make the caller
wait before the first sample.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import trio

from hana_voice.engines.async_engines import synthesize_stream
from hana_voice.engines.espeak_tts import EspeakTextToSpeech, load_espeak
from hana_voice.engines.runner import EngineRunner

PROMPT = "نَعَمْ"
SENTENCE = "مَرْحَبًا، نَتَّصِلُ بِكَ مِنَ الْمُسْتَشْفَى لِنَطْمَئِنَّ عَلَى صِحَّتِكَ بَعْدَ الْخُرُوجِ."
TEXTS = {"prompt": PROMPT, "sentence": SENTENCE, "paragraph": " ".join([SENTENCE] * 20)}


def direct(tts: EspeakTextToSpeech, text: str) -> tuple[float, float, int]:
    start = time.perf_counter()
    first = 0.0
    size = 0
    for chunk in tts.synthesize(text):
        if not size:
            first = time.perf_counter() - start
        size += len(chunk)
    return first, time.perf_counter() - start, size


def through_runner(tts: EspeakTextToSpeech, text: str) -> tuple[float, float, int]:
    async def main() -> tuple[float, float, int]:
        runner = EngineRunner(trio.CapacityLimiter(4), timeout=30.0)
        start = time.perf_counter()
        first = 0.0
        size = 0
        async with synthesize_stream(tts, runner, text) as chunks:
            async for chunk in chunks:
                if not size:
                    first = time.perf_counter() - start
                size += len(chunk)
        return first, time.perf_counter() - start, size

    return trio.run(main)


def p95(values: list[float]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    tts = load_espeak("ar")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {args.runs} runs each")
    print("text       path     audio s  first ms p50/p95   collect ms p50   RTF p50")
    for name, text in TEXTS.items():
        for path, run in (("direct", direct), ("runner", through_runner)):
            results = [run(tts, text) for _ in range(args.runs)]
            firsts = [r[0] * 1000 for r in results]
            totals = [r[1] for r in results]
            audio = statistics.median(r[2] for r in results) / 2 / tts.sample_rate
            print(
                f"{name:9s}  {path:7s}  {audio:7.2f}  {statistics.median(firsts):7.2f} /"
                f" {p95(firsts):6.2f}  {statistics.median(totals) * 1000:14.1f}"
                f"  {statistics.median(totals) / audio:8.4f}"
            )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
