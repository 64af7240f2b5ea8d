"""Time to first audio chunk and real-time factor of the XTTS engine.

Without --model-dir it writes the tiny random-weight checkpoint of the tests (one GPT layer,
but the full-size HiFi-GAN decoder) into a temporary directory, so it runs anywhere the xtts
extra is installed. Point --model-dir at a released XTTS v2 directory for real figures.

    .venv/bin/python bench/bench_tts_xtts.py                       # tiny model, CPU
    .venv/bin/python bench/bench_tts_xtts.py --device cuda         # tiny model, GPU
    .venv/bin/python bench/bench_tts_xtts.py --device cuda \\
        --model-dir models/tts/tts_models--multilingual--multi-dataset--xtts_v2 \\
        --speaker-wav voice.wav

Prints load time, first-chunk latency (p50/p90/max over runs) and real-time factor (seconds
of compute per second of audio; below 1 is faster than real time).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hana_voice.engines.xtts_tts import XttsTextToSpeech, load_xtts  # noqa: E402  # after path

TEXTS = (
    "مرحبا، معك هناء من المستشفى.",
    "هل تناولت الدواء في موعده بعد الخروج من المستشفى؟ أجب بنعم أو لا.",
    "موعدك القادم في العيادة يوم ٣ الساعة ١٠ صباحا. شكرا لوقتك، مع السلامة.",
)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def run_once(tts: XttsTextToSpeech, text: str) -> tuple[float, float, float, int]:
    """(first chunk s, total s, audio s, chunks) for one synthesis."""
    start = time.perf_counter()
    first = None
    size = 0
    chunks = 0
    for chunk in tts.synthesize(text):
        if first is None:
            first = time.perf_counter() - start
        size += len(chunk)
        chunks += 1
    total = time.perf_counter() - start
    return (first if first is not None else total), total, size / 2 / tts.sample_rate, chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, help="an XTTS v2 directory (default: tiny)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--speaker-wav", type=Path)
    parser.add_argument("--speaker", help="a built-in speaker (default: the first one)")
    parser.add_argument("--runs", type=int, default=3, help="passes over the texts")
    parser.add_argument("--chunk-size", type=int, default=20, help="GPT steps per chunk")
    parser.add_argument(
        "--tiny-audio-tokens", type=int, default=40, help="tiny model: audio codes per sentence"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        model_dir = args.model_dir
        if model_dir is None:
            from tests.engines.xtts_tiny import write_tiny_xtts

            model_dir = write_tiny_xtts(Path(scratch) / "tiny", args.tiny_audio_tokens)
        start = time.perf_counter()
        tts = load_xtts(
            model_dir,
            args.device,
            args.speaker_wav,
            args.speaker,
            stream_chunk_size=args.chunk_size,
        )
        load_s = time.perf_counter() - start
        import torch

        print(
            f"model={'tiny' if args.model_dir is None else model_dir} device={tts.device} "
            f"torch={torch.__version__} threads={torch.get_num_threads()} "
            f"chunk_size={args.chunk_size} load={load_s:.2f}s (after imports)"
        )
        run_once(tts, TEXTS[0])  # warm-up: first-call allocations and lazy inits
        firsts: list[float] = []
        rtfs: list[float] = []
        audio_total = 0.0
        compute_total = 0.0
        for _ in range(args.runs):
            for text in TEXTS:
                first, total, audio, chunks = run_once(tts, text)
                firsts.append(first)
                rtfs.append(total / audio if audio else float("inf"))
                audio_total += audio
                compute_total += total
                print(
                    f"  chars={len(text):3d} chunks={chunks:2d} first={first * 1000:7.0f}ms "
                    f"total={total:6.2f}s audio={audio:5.2f}s rtf={total / audio:5.2f}"
                )
        print(
            f"first chunk ms: p50={percentile(firsts, 0.5) * 1000:.0f} "
            f"p90={percentile(firsts, 0.9) * 1000:.0f} max={max(firsts) * 1000:.0f}"
        )
        print(
            f"real-time factor: overall={compute_total / audio_total:.2f} "
            f"p50={statistics.median(rtfs):.2f} p90={percentile(rtfs, 0.9):.2f}"
        )


if __name__ == "__main__":
    main()
