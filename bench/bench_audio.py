"""Throughput of the audio path, in multiples of real time on one core.

    .venv/bin/python bench/bench_audio.py

Each figure is seconds of audio processed per second of CPU (best of five runs), fed the way a
call feeds it: 20 ms frames, one call at a time. The VAD comparison (detection, latency, false
triggers) is bench/vad_compare.py.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import av
import numpy as np

from hana_voice.audio import mulaw
from hana_voice.audio.decode import decode_utterance
from hana_voice.audio.resample import StreamResampler, resample
from hana_voice.audio.vad import VoiceActivityDetector

SECONDS = 30.0


def speech_like(rate: int) -> bytes:
    rng = np.random.default_rng(0)
    t = np.arange(int(SECONDS * rate)) / rate
    signal = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 12))
    signal = signal * (0.5 - 0.5 * np.cos(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(t.size)
    return bytes((signal / np.max(np.abs(signal)) * 12000).astype("<i2").tobytes())


def frames(data: bytes, frame_bytes: int) -> list[bytes]:
    return [data[i : i + frame_bytes] for i in range(0, len(data), frame_bytes)]


def times_real_time(work: Callable[[], object]) -> float:
    runs = []
    for _ in range(5):
        started = time.process_time()
        work()
        runs.append(time.process_time() - started)
    return SECONDS / max(min(runs), 1e-9)


def main() -> None:
    pcm8, pcm16, pcm24 = speech_like(8000), speech_like(16000), speech_like(24000)
    ulaw_frames = frames(mulaw.encode(pcm8), 160)
    pcm8_frames, pcm16_frames, pcm24_frames = (
        frames(pcm8, 320),
        frames(pcm16, 640),
        frames(pcm24, 960),
    )

    def streamed(chunks: list[bytes], in_rate: int, out_rate: int) -> None:
        resampler = StreamResampler(in_rate, out_rate)
        for chunk in chunks:
            resampler.process(chunk)
        resampler.flush()

    def vad(chunks: list[bytes], rate: int, method: str) -> None:
        detector = VoiceActivityDetector(rate, method=method)  # type: ignore[arg-type]
        for chunk in chunks:
            detector.process(chunk)

    def webm_opus() -> bytes:
        buffer = io.BytesIO()
        samples = np.frombuffer(resample(pcm8, 8000, 48000), "<i2")[None, :]
        with av.open(buffer, "w", format="webm") as out:
            stream = out.add_stream("libopus", rate=48000, layout="mono")
            assert isinstance(stream, av.AudioStream)
            for start in range(0, samples.shape[1], 960):
                frame = av.AudioFrame.from_ndarray(
                    samples[:, start : start + 960], format="s16", layout="mono"
                )
                frame.sample_rate, frame.pts = 48000, start
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        return buffer.getvalue()

    opus = webm_opus()
    cases: dict[str, Callable[[], object]] = {
        "mu-law encode, 20 ms frames": lambda: [mulaw.encode(f) for f in pcm8_frames],
        "mu-law decode, 20 ms frames": lambda: [mulaw.decode(f) for f in ulaw_frames],
        "resample 8k->16k, streamed 20 ms": lambda: streamed(pcm8_frames, 8000, 16000),
        "resample 24k->8k, streamed 20 ms": lambda: streamed(pcm24_frames, 24000, 8000),
        "resample 8k->16k, one shot": lambda: resample(pcm8, 8000, 16000),
        "resample 24k->8k, one shot": lambda: resample(pcm24, 24000, 8000),
        "VAD gated (default), 8 kHz": lambda: vad(pcm8_frames, 8000, "gated"),
        "VAD gated (default), 16 kHz": lambda: vad(pcm16_frames, 16000, "gated"),
        "VAD webrtc only, 8 kHz": lambda: vad(pcm8_frames, 8000, "webrtc"),
        "decode WebM/Opus -> 16 kHz": lambda: decode_utterance(opus, 16000),
    }
    print(f"{SECONDS:.0f} s of speech-like audio per run, best of 5, one core")
    print("| operation | x real time | us per 20 ms frame |")
    print("|---|---|---|")
    for name, work in cases.items():
        ratio = times_real_time(work)
        print(f"| {name} | {ratio:,.0f}x | {20_000 / ratio:.1f} |")


if __name__ == "__main__":
    main()
