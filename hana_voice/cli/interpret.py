"""``hana-voice interpret``: run answer understanding over lines of text, for tests and operators.

Reads one answer per line on stdin and writes one JSON object per line on stdout::

    {"text": "...", "value": "yes" | "no" | "uncertain" | 7 | null,
     "intent": "repeat" | "human" | "stop" | "identify" | "callback" | null,
     "do_not_call": false, "confidence": 0.95}

``do_not_call`` is true for a ``stop`` that asks never to be called again. ``--type identity``
reads answers to the identity check ("am I speaking with ...?"), where "not here" is a
call-back and "I'm his brother" is no.

Nothing is logged: the answers are patient data and go only to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from hana_voice.questionnaire.understanding import interpret

TYPES = ("yes_no", "rating", "numeric", "identity")


def run_interpret(answer_type: str, stdin: TextIO, stdout: TextIO) -> int:
    """Interpret each line of ``stdin``; return the exit status (2 for an unknown type)."""
    if answer_type not in TYPES:
        print(f"interpret: --type must be one of {', '.join(TYPES)}", file=sys.stderr)
        return 2
    for line in stdin:
        text = line.rstrip("\r\n")
        understood = interpret(text, answer_type)
        record = {
            "text": text,
            "value": understood.value,
            "intent": understood.intent,
            "do_not_call": understood.do_not_call,
            "confidence": understood.confidence,
        }
        stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    stdout.flush()
    return 0


def add_parser(subparsers: Any) -> None:
    """Register ``interpret`` on the CLI's subparsers (``parser.add_subparsers()``).

    The parsed namespace carries ``func``: call ``args.func(args)`` for the exit status.
    """
    parser = subparsers.add_parser(
        "interpret",
        help="understand Arabic answers read from stdin, one per line, as JSON lines",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--type", dest="answer_type", choices=TYPES, required=True)
    parser.set_defaults(func=_handle)


def _handle(args: argparse.Namespace) -> int:
    # Answers are Arabic: read and write UTF-8 whatever the locale says.
    for stream in (sys.stdin, sys.stdout):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8")
    return run_interpret(args.answer_type, sys.stdin, sys.stdout)


def main(argv: Sequence[str] | None = None) -> None:
    """Run ``interpret`` on its own: ``python -m hana_voice.cli.interpret``."""
    parser = argparse.ArgumentParser(prog="hana-voice")
    add_parser(parser.add_subparsers(dest="command", required=True))
    given = list(sys.argv[1:] if argv is None else argv)
    # Accept both "interpret --type X" (as under hana-voice) and plain "--type X".
    if given[:1] == ["interpret"]:
        given = given[1:]
    args = parser.parse_args(["interpret", *given])
    raise SystemExit(args.func(args))


if __name__ == "__main__":
    main()
