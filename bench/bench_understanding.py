"""Answer-understanding throughput: labelled Arabic answers interpreted per second.

Run: .venv/bin/python bench/bench_understanding.py [--seconds 2]
Prints answers/second per answer type and the per-answer latency percentiles, plus a full
dialog step rate (UserSaid through the state machine, which interprets and builds prompts).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hana_voice.questionnaire import interpret, load_questionnaires  # noqa: E402  # after sys.path
from hana_voice.questionnaire.dialog import UserSaid, start, step  # noqa: E402  # after sys.path
from hana_voice.settings import DEFAULT_QUESTIONNAIRE_DIR  # noqa: E402  # after sys.path

DATA = ROOT / "tests" / "questionnaire" / "data"


def answers(name: str) -> list[str]:
    lines = (DATA / f"{name}.tsv").read_text(encoding="utf-8").splitlines()
    return [line.split("\t")[0] for line in lines if line and not line.startswith("#")]


def measure(label: str, texts: list[str], answer_type: str, options: tuple, seconds: float) -> None:  # type: ignore[type-arg]  # bench script
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for text in texts:
            t0 = time.perf_counter()
            interpret(text, answer_type, options)
            latencies.append(time.perf_counter() - t0)
    total = sum(latencies)
    q = statistics.quantiles(latencies, n=100)
    print(f"{label:16} {len(latencies) / total:>10,.0f} answers/s   p50 {q[49] * 1e6:6.1f} us"
          f"   p99 {q[98] * 1e6:6.1f} us   ({len(latencies)} answers)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    seconds = parser.parse_args().seconds
    questionnaire = load_questionnaires(DEFAULT_QUESTIONNAIRE_DIR)["post_discharge_followup"]
    choice = questionnaire.question("overall_condition")
    assert choice is not None
    measure("yes_no", answers("yes_no"), "yes_no", (), seconds)
    measure("rating", answers("rating"), "rating", (), seconds)
    measure("multiple_choice", answers("multiple_choice"), "multiple_choice", choice.options,
            seconds)  # fmt: skip
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        state, _ = start(questionnaire, "telephony")
        for text in ("نعم", "ايوه", "لا", "تلاتة", "لا", "احسن", "اي", "لا شكرا"):
            state, _ = step(state, UserSaid(text))
            steps += 1
    elapsed = time.perf_counter() - t0
    print(f"{'dialog steps':16} {steps / elapsed:>10,.0f} steps/s     (full calls of 8 answers)")


if __name__ == "__main__":
    main()
