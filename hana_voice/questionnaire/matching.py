"""Longest-phrase matching of normalised words against the answer lexicon.

A phrase table maps a tuple of folded words to a label (and, for numbers, ordinals and
options, a value). Scanning takes the longest phrase at each position, so "ما في" is one
``no`` rather than a negator and a preposition, and "لا أعرف" is ``uncertain`` rather than
``no``. A word the table lacks is tried again without the clitics people and recognisers
attach to it (و, ف, ال, ب, a final ه), then labelled ``unknown``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from hana_voice.questionnaire import lexicon
from hana_voice.questionnaire.normalize import normalize
from hana_voice.questionnaire.template import Option

Entry = tuple[str, int | str | None]
Table = Mapping[tuple[str, ...], Entry]


@dataclass(frozen=True)
class Span:
    """A matched phrase: its label, its folded words, and a value for numbers and options."""

    label: str
    words: tuple[str, ...]
    value: int | str | None = None

    @property
    def text(self) -> str:
        return " ".join(self.words)


def _add(table: dict[tuple[str, ...], Entry], phrases: Iterable[str], label: str,
         value: int | str | None = None) -> None:  # fmt: skip
    for phrase in phrases:
        key = tuple(normalize(phrase).split())
        # First writer wins: the order of _build states which meaning a shared word takes.
        if key and key not in table:
            table[key] = (label, value)


def _build() -> dict[tuple[str, ...], Entry]:
    table: dict[tuple[str, ...], Entry] = {}
    _add(table, lexicon.DO_NOT_CALL, "do_not_call")
    _add(table, lexicon.BUSY, "busy")
    _add(table, lexicon.LATER, "later")
    _add(table, lexicon.IDENTIFY, "identify")
    _add(table, lexicon.UNCERTAIN, "uncertain")
    _add(table, lexicon.REPEAT, "repeat")
    _add(table, lexicon.CORRECTION, "correction")
    _add(table, lexicon.NEVER, "never")
    _add(table, lexicon.HUMAN, "human")
    _add(table, lexicon.STOP, "stop")
    _add(table, lexicon.NO, "no")
    _add(table, lexicon.YES, "yes")
    _add(table, lexicon.WANT, "want")
    _add(table, lexicon.TALK, "talk")
    _add(table, lexicon.PERSON, "person")
    _add(table, lexicon.CONTINUE, "continue")
    _add(table, lexicon.WEAK_YES, "weak_yes")
    _add(table, lexicon.ENOUGH, "enough")
    _add(table, lexicon.CALL_ME, "call_me")
    _add(table, lexicon.CALL, "call")
    _add(table, lexicon.CALL_DAY, "day")
    _add(table, lexicon.DAY_PARTS, "part")
    _add(table, lexicon.TIME_UNITS, "unit")
    _add(table, lexicon.REMOVE, "remove")
    _add(table, lexicon.MY_NUMBER, "my_number")
    for number, words in lexicon.NUMBER_WORDS.items():
        _add(table, words, "number", number)
    for number, words in lexicon.LARGE_NUMBERS.items():
        _add(table, words, "number", number)
    for position, words in lexicon.ORDINALS.items():
        _add(table, words, "ordinal", position)
    _add(table, lexicon.NEGATORS, "negator")
    _add(table, lexicon.SCALE_MARKERS, "scale")
    _add(table, lexicon.FRACTIONS, "fraction")
    _add(table, lexicon.FILLERS, "filler")
    _add(table, lexicon.AFTER, "after")
    return table


def _build_identity() -> dict[tuple[str, ...], Entry]:
    """The base table with the identity check's words: someone else, or not here."""
    table: dict[tuple[str, ...], Entry] = {}
    _add(table, lexicon.ABSENT, "absent")
    _add(table, lexicon.RELATIVE, "relative")
    for key, entry in _build().items():
        table.setdefault(key, entry)
    return table


BASE_TABLE: Table = _build()
IDENTITY_TABLE: Table = _build_identity()
CERTAINTY = frozenset(normalize(w) for w in lexicon.CERTAINTY)


def _variants(word: str) -> list[str]:
    """The word without the clitics that commonly stick to it, most likely first."""
    out: list[str] = []
    stem = word
    if len(stem) > 2 and stem[0] in "وف":
        stem = stem[1:]
        out.append(stem)
    if len(stem) > 2 and stem[0] == "ب" and stem.startswith("بال"):
        stem = stem[1:]
        out.append(stem)
    if len(stem) > 3 and stem.startswith("ال"):
        stem = stem[2:]
        out.append(stem)
    if len(stem) > 3 and stem.endswith("ه"):
        out.append(stem[:-1])
    return out


def _max_len(table: Table) -> int:
    return max((len(k) for k in table), default=1)


_BASE_MAX = _max_len(BASE_TABLE)
_IDENTITY_MAX = _max_len(IDENTITY_TABLE)


@lru_cache(maxsize=256)
def option_table(options: tuple[Option, ...]) -> Table:
    """The base table with the options' words in front of it (options win a shared word)."""
    table: dict[tuple[str, ...], Entry] = {}
    for option in options:
        phrases = [option.text, *option.synonyms]
        if option.speech_text:
            phrases.append(option.speech_text)
        _add(table, phrases, "option", option.id)
        for phrase in phrases:
            words = normalize(phrase).split()
            if len(words) == 1:
                _add(table, _variants(words[0]), "option", option.id)
    for key, entry in BASE_TABLE.items():
        table.setdefault(key, entry)
    return table


def scan(words: Sequence[str], table: Table = BASE_TABLE) -> list[Span]:
    """Label ``words`` left to right, taking the longest phrase at each position."""
    longest = (
        _BASE_MAX
        if table is BASE_TABLE
        else _IDENTITY_MAX
        if table is IDENTITY_TABLE
        else (_max_len(table))
    )
    spans: list[Span] = []
    i = 0
    while i < len(words):
        span = _match_at(words, i, table, longest)
        spans.append(span)
        i += len(span.words)
    return spans


def _match_at(words: Sequence[str], i: int, table: Table, longest: int) -> Span:
    for size in range(min(longest, len(words) - i), 0, -1):
        key = tuple(words[i : i + size])
        entry = table.get(key)
        if entry is not None:
            return Span(entry[0], key, entry[1])
    word = words[i]
    if word.isascii() and word.isdigit():
        return Span("number", (word,), int(word))
    for variant in _variants(word):
        entry = table.get((variant,))
        if entry is not None:
            return Span(entry[0], (word,), entry[1])
    return Span("unknown", (word,))
