"""The ``interpret`` command, as a function and as a process, over the labelled answers."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys

import pytest

from hana_voice.cli.interpret import add_parser, run_interpret
from tests.questionnaire.labelled import Labelled, labelled

YES_NO = labelled("yes_no")
RATING = labelled("rating", numeric=True)
IDENTITY = labelled("identity")


def expected(row: Labelled) -> tuple[object, object, bool]:
    """The labels use "do_not_call" for a stop that asks never to be called again."""
    dnc = row.intent == "do_not_call"
    return row.value, "stop" if dnc else row.intent, dnc


def _run(answer_type: str, lines: list[str]) -> list[dict[str, object]]:
    out = io.StringIO()
    assert run_interpret(answer_type, io.StringIO("\n".join(lines) + "\n"), out) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.parametrize(
    ("answer_type", "rows"), [("yes_no", YES_NO), ("rating", RATING), ("identity", IDENTITY)]
)
def test_function_over_labelled_answers(answer_type: str, rows: list) -> None:  # type: ignore[type-arg]  # rows are Labelled
    results = _run(answer_type, [r.text for r in rows])
    assert len(results) == len(rows)
    for row, result in zip(rows, results, strict=True):
        assert set(result) == {"text", "value", "intent", "do_not_call", "confidence"}
        assert result["text"] == row.text
        assert (result["value"], result["intent"], result["do_not_call"]) == expected(row)
        assert isinstance(result["confidence"], float | int) and 0 <= result["confidence"] <= 1


def test_unknown_type_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_interpret("essay", io.StringIO("نعم\n"), io.StringIO()) == 2
    assert "--type" in capsys.readouterr().err


def test_add_parser_registers_interpret() -> None:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["interpret", "--type", "rating"])
    assert args.answer_type == "rating" and callable(args.func)


def test_subprocess_writes_utf8_json_lines() -> None:
    rows = YES_NO + RATING
    text = "\n".join(r.text for r in YES_NO) + "\n"
    done = subprocess.run(
        [sys.executable, "-c", "from hana_voice.cli.interpret import main; main()",
         "interpret", "--type", "yes_no"],
        input=text.encode("utf-8"), capture_output=True, timeout=60, check=True,
        env={"PYTHONIOENCODING": "ascii", "LC_ALL": "C", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    lines = done.stdout.decode("utf-8").splitlines()
    assert len(lines) == len(YES_NO) < len(rows)
    assert "نعم" in lines[0]  # ensure_ascii=False: the Arabic is written as is
    for row, line in zip(YES_NO, lines, strict=True):
        result = json.loads(line)
        assert (result["value"], result["intent"], result["do_not_call"]) == expected(row)


def test_module_entry_point_rating() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hana_voice.cli.interpret", "--type", "rating"],
        input="ثمانية من عشرة\n٣\n".encode(), capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    values = [json.loads(line)["value"] for line in done.stdout.decode().splitlines()]
    assert values == [8, 3]
