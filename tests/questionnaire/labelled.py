"""The labelled Arabic answers in ``data/*.tsv``: text, expected value, expected intent, form."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class Labelled:
    text: str
    value: str | int | None
    intent: str | None
    form: str


def labelled(name: str, numeric: bool = False) -> list[Labelled]:
    rows = []
    for line in (DATA / f"{name}.tsv").read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        text, value, intent, form = line.split("\t")
        parsed: str | int | None = None if value == "-" else value
        if numeric and parsed is not None:
            parsed = int(parsed)
        rows.append(Labelled(text, parsed, None if intent == "-" else intent, form))
    return rows
