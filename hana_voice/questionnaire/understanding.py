"""Arabic answer understanding: what a transcript or typed answer says, and how sure we are.

Pure functions over text. :func:`interpret` folds the text
(:mod:`~hana_voice.questionnaire.normalize`), labels its phrases
(:mod:`~hana_voice.questionnaire.matching`) and reads an answer of the asked type plus any
intent (repeat the question, talk to a person, stop the call). When the words disagree
("نعم ... لا", "سبعة أو ثمانية") or say nothing it knows, the value is ``None``: the dialog
re-asks rather than guessing. An intent outranks answer words around it, so an answer with an
intent has no value. Confidence is a plain score, 0..1, not a probability: strong
words give 0.95, words that only lean one way give 0.5-0.55, and every word not understood
takes a little off, so the dialog's confirmation threshold can catch the doubtful ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import Literal

from hana_voice.questionnaire import lexicon
from hana_voice.questionnaire.matching import BASE_TABLE, CERTAINTY, Span, option_table, scan
from hana_voice.questionnaire.normalize import tokens
from hana_voice.questionnaire.template import AnswerValue, Option, Question

Intent = Literal["repeat", "human", "stop"]

STRONG = 0.95
AGREEING = 0.98
WEAK = 0.55
#: "not <word we do not know>" is probably no, but below WEAK so that templates confirm it.
NEGATED_GUESS = 0.5
#: An option picked by position ("الثاني", "٢") rather than by its own words.
BY_POSITION = 0.85
CONFLICT = 0.3
INTENT_ONLY = 0.9
UNKNOWN_PENALTY = 0.03
MAX_PENALTY = 0.2

_POLAR = ("yes", "weak_yes", "no", "uncertain")
# Words after a negator that make it part of a request, not an answer ("مش عايز أكمل").
_REQUEST = ("want", "talk", "continue", "person", "repeat", "stop", "human")


@dataclass(frozen=True)
class Interpretation:
    """What an answer says: a value of the asked type or None, an intent or None, a score."""

    value: AnswerValue | None
    intent: Intent | None
    confidence: float
    #: The folded phrases that decided it (for tests and debugging; never logged).
    matched: tuple[str, ...] = ()


def interpret(text: str, answer_type: str, options: Sequence[Option] = ()) -> Interpretation:
    """Understand one answer to a question of ``answer_type``."""
    words = tokens(text)
    if not words:
        return Interpretation(None, None, 0.0)
    table = option_table(tuple(options)) if options else BASE_TABLE
    spans = scan(words, table)
    intent = _intent(spans)
    value: AnswerValue | None
    if answer_type == "yes_no":
        value, score, used = _yes_no(spans)
    elif answer_type in ("rating", "numeric"):
        value, score, used = _number(spans)
    elif answer_type == "multiple_choice":
        value, score, used = _choice(spans, options)
    elif answer_type == "open_text":
        value, score, used = (None, 0.0, []) if intent else (text.strip(), 1.0, [])
    else:
        raise ValueError(f"unknown answer type {answer_type!r}")
    if intent is not None:
        # A request outranks any answer words around it ("ممكن تعيد السؤال" is not "maybe").
        value, score = None, INTENT_ONLY
    elif value is not None and answer_type != "open_text":
        unknown = sum(1 for s in spans if s.label == "unknown")
        score = max(score - min(unknown * UNKNOWN_PENALTY, MAX_PENALTY), 0.05)
    matched = tuple(s.text for s in spans if s.label not in ("unknown", "filler"))
    return Interpretation(value, intent, round(score, 3), matched if used or intent else ())


def _meaningful(spans: Sequence[Span]) -> list[Span]:
    return [s for s in spans if s.label != "filler"]


def _negated_want(spans: Sequence[Span]) -> bool:
    for before, span in pairwise(spans):
        if span.label == "want" and (
            before.label == "negator" or (before.label == "no" and before.words == ("لا",))
        ):
            return True
    return False


def _intent(spans: Sequence[Span]) -> Intent | None:
    labels = {s.label for s in spans}
    negated = _negated_want(spans)
    if "human" in labels:
        return "human"
    if "person" in labels and not negated and labels & {"talk", "want"}:
        return "human"
    if "stop" in labels:
        return "stop"
    if negated and labels & {"continue", "talk"} and "person" not in labels:
        return "stop"
    if "repeat" in labels:
        return "repeat"
    return None


def _yes_no(spans: Sequence[Span]) -> tuple[str | None, float, list[Span]]:
    found: list[tuple[str, float]] = []
    used: list[Span] = []
    sig = _meaningful(spans)
    skip = False
    for i, span in enumerate(sig):
        if skip:
            skip = False
            continue
        if span.label == "negator":
            after = sig[i + 1] if i + 1 < len(sig) else None
            reading = _negated(after)
            if reading is not None:
                found.append(reading)
                used.extend((span, after) if after else (span,))
                skip = True
        elif span.label in _POLAR:
            strength = WEAK if span.label == "weak_yes" else STRONG
            found.append(("yes" if span.label == "weak_yes" else span.label, strength))
            used.append(span)
    values = {v for v, _ in found}
    if not values:
        return None, 0.0, []
    if {"yes", "no"} <= values:
        return None, CONFLICT, used
    value = "uncertain" if "uncertain" in values else values.pop()
    strengths = sorted((s for v, s in found if v == value), reverse=True)
    score = AGREEING if len(strengths) > 1 and strengths[1] >= STRONG else strengths[0]
    return value, score, used


def _negated(after: Span | None) -> tuple[str, float] | None:
    """What "not X" says: not sure -> uncertain, not yes/there is -> no, not <word> -> no."""
    if after is None or after.label in _REQUEST:
        return None
    if after.text in CERTAINTY:
        return "uncertain", STRONG
    if after.label in ("yes", "no", "weak_yes"):
        return "no", STRONG
    if after.label == "uncertain":
        return "uncertain", STRONG
    if after.label in ("unknown", "number", "option"):
        return "no", NEGATED_GUESS
    return None


def _number(spans: Sequence[Span]) -> tuple[int | None, float, list[Span]]:
    sig = _meaningful(spans)
    numbers: list[int] = []
    used: list[Span] = []
    unclear = False
    for i, span in enumerate(sig):
        before = sig[i - 1] if i else None
        if span.label == "number" and isinstance(span.value, int):
            if before is not None and before.label == "scale" and numbers:
                continue  # "ثمانية من عشرة": the 10 is the scale
            if before is not None and before.label == "negator":
                unclear = True
            numbers.append(span.value)
            used.append(span)
        elif span.label == "fraction":
            unclear = True
    if not numbers:
        return None, 0.0, []
    if unclear or len(set(numbers)) > 1:
        return None, CONFLICT, used
    return numbers[0], STRONG, used


def _choice(
    spans: Sequence[Span], options: Sequence[Option]
) -> tuple[str | None, float, list[Span]]:
    sig = _meaningful(spans)
    chosen: set[str] = set()
    used: list[Span] = []
    for i, span in enumerate(sig):
        if span.label == "option" and isinstance(span.value, str):
            if i and sig[i - 1].label == "negator":
                return None, CONFLICT, used  # "مش ممتاز" names an option only to deny it
            chosen.add(span.value)
            used.append(span)
    if len(chosen) > 1:
        return None, CONFLICT, used
    if chosen:
        return chosen.pop(), STRONG, used
    positions = {
        s.value for s in sig if s.label in ("ordinal", "number") and isinstance(s.value, int)
    }
    if len(positions) != 1 or not options:
        return None, CONFLICT if positions else 0.0, used
    position = positions.pop()
    assert isinstance(position, int)
    if position == -1:
        return options[-1].id, BY_POSITION, used
    if 1 <= position <= len(options):
        return options[position - 1].id, BY_POSITION, used
    return None, CONFLICT, used


def expected_phrases(question: Question) -> list[str]:
    """Phrases a grammar-mode recogniser should listen for on ``question``, plus "[unk]".

    Open-text questions return an empty list: they need free recognition, not a grammar.
    """
    return list(_phrases(question.type, question.options))


@lru_cache(maxsize=256)
def _phrases(answer_type: str, options: tuple[Option, ...]) -> tuple[str, ...]:
    # Cached: the lists depend only on the type and the options, and a dialog asks for them
    # on every prompt.
    intents = (lexicon.REPEAT, lexicon.HUMAN, lexicon.STOP, lexicon.PERSON, lexicon.TALK,
               lexicon.WANT)  # fmt: skip
    if answer_type == "open_text":
        return ()
    if answer_type == "yes_no":
        groups: tuple[Sequence[str], ...] = (
            lexicon.YES, lexicon.NO, lexicon.UNCERTAIN, lexicon.WEAK_YES, lexicon.NEGATORS,
            lexicon.CERTAINTY,
        )  # fmt: skip
    elif answer_type in ("rating", "numeric"):
        numbers = [w for n in sorted(lexicon.NUMBER_WORDS) for w in lexicon.NUMBER_WORDS[n]]
        groups = (numbers, lexicon.SCALE_MARKERS, lexicon.FRACTIONS)
    else:
        option_words = [
            w
            for o in options
            for w in (o.text, *((o.speech_text,) if o.speech_text else ()), *o.synonyms)
        ]
        ordinals = [w for n in sorted(lexicon.ORDINALS) for w in lexicon.ORDINALS[n]]
        numbers = [w for n in range(1, len(options) + 1) for w in lexicon.NUMBER_WORDS.get(n, ())]
        groups = (option_words, ordinals, numbers, lexicon.NEGATORS)
    return (*lexicon.grammar_words(*groups, lexicon.FILLERS, *intents), "[unk]")


def spoken_answer(question: Question, value: AnswerValue) -> str:
    """The answer as read back in a confirmation prompt."""
    if isinstance(value, int):
        if 0 <= value < len(lexicon.SPOKEN_NUMBERS):
            return lexicon.SPOKEN_NUMBERS[value]
        return str(value)
    if question.type == "yes_no":
        return {"yes": lexicon.YES_SPOKEN, "no": lexicon.NO_SPOKEN}.get(
            value, lexicon.UNCERTAIN_SPOKEN
        )
    option = question.option(value)
    if option is not None:
        return option.speech_text or option.text
    return value
