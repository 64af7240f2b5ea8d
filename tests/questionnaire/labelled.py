"""The labelled Arabic answers in ``data/*.tsv``: text, expected value, expected intent, form.

The form's first word is the dialect group (:data:`GROUPS`); the intent ``do_not_call`` means
a ``stop`` that asks never to be called again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).parent / "data"
GROUPS = ("msa", "gulf", "saudi", "levantine", "egyptian")
#: Each file and the answer type its answers are read as.
FILES = {"yes_no": "yes_no", "rating": "rating", "multiple_choice": "multiple_choice",
         "identity": "identity"}  # fmt: skip


@dataclass(frozen=True)
class Labelled:
    text: str
    value: str | int | None
    intent: str | None
    form: str

    @property
    def group(self) -> str:
        return self.form.split()[0]


def labelled(name: str, numeric: bool = False) -> list[Labelled]:
    rows = []
    for line in (DATA / f"{name}.tsv").read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        text, value, intent, form = line.split("\t")
        if form.split()[0] not in GROUPS:
            raise ValueError(f"{name}.tsv: {form!r} does not start with a group of {GROUPS}")
        parsed: str | int | None = None if value == "-" else value
        if numeric and parsed is not None:
            parsed = int(parsed)
        rows.append(Labelled(text, parsed, None if intent == "-" else intent, form))
    return rows
