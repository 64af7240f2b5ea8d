"""Time to first chunk of a prompt: memory hit, disk hit, and synthesis through the runner.

Run: .venv/bin/python bench/bench_prompt_cache.py [--rounds N] [--engine espeak|fake]

Synthesis uses the embedded espeak-ng engine when it loads (the fastest real engine; XTTS is
seconds per prompt), else a fake that costs what its ``--fake-ms`` says. Hits are timed from
the ``get`` call to the first 20 ms chunk in hand, the path a call session takes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import trio
from bench_load import percentile

from hana_voice.engines.base import TextToSpeech
from hana_voice.engines.fake import tone
from hana_voice.engines.prompt_cache import PromptCache, iter_chunks
from hana_voice.engines.runner import EngineRunner

PROMPTS = [
    "مرحباً، معك هناء من المستشفى. هل هذا وقت مناسب للحديث؟",
    "كيف تشعر اليوم بعد خروجك من المستشفى؟",
    "هل تتناول أدويتك في مواعيدها؟",
    "هل تشعر بأي ألم؟ أجب بنعم أو لا.",
    "لم أفهم إجابتك، هل يمكنك الإعادة من فضلك؟",
    "شكراً لوقتك، مع السلامة.",
]


class FakeTTS:
    """Sleeps ``cost`` seconds, then yields a tone of 60 ms per character at 16 kHz."""

    name = "fake"
    voice = "ar"
    sample_rate = 16000

    def __init__(self, cost: float) -> None:
        self.cost = cost

    def synthesize(self, text: str) -> Iterator[bytes]:
        time.sleep(self.cost)
        pcm = tone(60 * len(text), self.sample_rate)
        for start in range(0, len(pcm), 640):
            yield pcm[start : start + 640]


def load_engine(kind: str, fake_ms: float) -> TextToSpeech:
    if kind == "espeak":
        try:
            from hana_voice.engines.espeak_tts import load_espeak

            return load_espeak("ar")
        except Exception as exc:  # a bench falls back rather than dies
            print(
                f"espeak unavailable ({type(exc).__name__}: {exc}); using the fake", file=sys.stderr
            )
    return FakeTTS(fake_ms / 1000.0)


def line(label: str, values: list[float]) -> str:
    return (
        f"{label:<22} n={len(values):<5} p50={statistics.median(values):8.3f} ms"
        f"  p99={percentile(values, 99):8.3f} ms  max={max(values):8.3f} ms"
    )


async def first_chunk_hit(cache: PromptCache, tts: TextToSpeech, text: str) -> float:
    start = time.perf_counter()
    pcm = await cache.get(tts, text)
    assert pcm is not None
    next(iter_chunks(pcm, tts.sample_rate))
    return (time.perf_counter() - start) * 1000.0


async def first_chunk_synth(tts: TextToSpeech, runner: EngineRunner, text: str) -> float:
    start = time.perf_counter()
    async with runner.stream(lambda: tts.synthesize(text)) as chunks:
        async for _ in chunks:
            break
    return (time.perf_counter() - start) * 1000.0


async def main(rounds: int, engine: str, fake_ms: float) -> None:
    tts = load_engine(engine, fake_ms)
    runner = EngineRunner(trio.CapacityLimiter(2), timeout=60.0)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        cache = PromptCache(directory)
        start = time.perf_counter()
        report = await cache.warm(tts, runner, PROMPTS)
        warm_s = time.perf_counter() - start
        sizes = [len(await cache.get(tts, t) or b"") for t in PROMPTS]

        memory = [await first_chunk_hit(cache, tts, t) for _ in range(rounds) for t in PROMPTS]
        disk: list[float] = []
        for _ in range(rounds):
            cold = PromptCache(directory)  # empty memory: every get reads the file
            disk += [await first_chunk_hit(cold, tts, t) for t in PROMPTS]
        synth_rounds = max(1, rounds // 10)
        synth = [
            await first_chunk_synth(tts, runner, t) for _ in range(synth_rounds) for t in PROMPTS
        ]

    print(f"engine={tts.name} voice={tts.voice} rate={tts.sample_rate} prompts={len(PROMPTS)}")
    print(f"prompt PCM sizes: {min(sizes)}..{max(sizes)} bytes")
    print(f"warm-up: {report} in {warm_s:.3f} s")
    print(line("memory hit -> chunk", memory))
    print(line("disk hit -> chunk", disk))
    print(line("synthesis -> chunk", synth))
    print(
        f"ratio synthesis/memory p50: {statistics.median(synth) / statistics.median(memory):.0f}x,"
        f" synthesis/disk p50: {statistics.median(synth) / statistics.median(disk):.0f}x"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--engine", choices=("espeak", "fake"), default="espeak")
    parser.add_argument("--fake-ms", type=float, default=50.0)
    ns = parser.parse_args()
    trio.run(main, ns.rounds, ns.engine, ns.fake_ms)
