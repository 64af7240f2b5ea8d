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
from hana_voice.questionnaire.matching import (
    BASE_TABLE,
    CERTAINTY,
    IDENTITY_TABLE,
    Span,
    option_table,
    scan,
)
from hana_voice.questionnaire.normalize import normalize, tokens
from hana_voice.questionnaire.template import AnswerValue, Option, Question

Intent = Literal["repeat", "human", "stop", "identify", "callback"]
INTENTS: tuple[Intent, ...] = ("repeat", "human", "stop", "identify", "callback")
#: The answer types :func:`interpret` reads; "identity" is the identity check's yes/no, which
#: also hears "someone else" (no) and "not here" (a call-back).
READ_TYPES = ("yes_no", "rating", "numeric", "multiple_choice", "open_text", "identity")

STRONG = 0.95
AGREEING = 0.98
WEAK = 0.55
#: "not <word we do not know>" is probably no, but below WEAK so that templates confirm it.
NEGATED_GUESS = 0.5
#: An option picked by position ("الثاني", "٢") rather than by its own words.
BY_POSITION = 0.85
CONFLICT = 0.3
INTENT_ONLY = 0.9
#: A bare regional negation as the whole answer ("مب", "مو"): no, a shade below a plain "لا".
BARE_NEGATION = 0.9
UNKNOWN_PENALTY = 0.03
MAX_PENALTY = 0.2

_POLAR = ("yes", "weak_yes", "no", "uncertain", "relative")
# Words after a negator that make it part of a request, not an answer ("مش عايز أكمل").
_REQUEST = ("want", "talk", "continue", "person", "repeat", "stop", "human", "call", "call_me",
            "busy", "later", "identify", "enough", "never")  # fmt: skip
# Negators that answer "no" on their own (Gulf, Najdi, Levantine, Egyptian); "ما", "لم", "لن"
# and "لست" alone are dangling, not answers.
_BARE_NEGATIONS = frozenset(normalize(w) for w in ("مب", "مو", "موب", "مهوب", "مش", "ماني",
                                                  "مانيش"))  # fmt: skip
# Words that carry no answer: politeness, and the self-correction markers themselves.
_SILENT = ("filler", "correction")
# "عفوا" is "pardon?" alone but "sorry, I mean" before an answer.
_CORRECTING_REPEAT = frozenset(normalize(w) for w in ("عفوا", "عفوًا", "آسف", "سوري"))
# Labels that say "when" for a call-back.
_WHEN = frozenset({"day", "part", "unit", "later", "repeat"})
_DAY_OR_DURATION = frozenset({"day"})


@dataclass(frozen=True)
class Interpretation:
    """What an answer says: a value of the asked type or None, an intent or None, a score."""

    value: AnswerValue | None
    intent: Intent | None
    confidence: float
    #: The folded phrases that decided it (for tests and debugging; never logged).
    matched: tuple[str, ...] = ()
    #: A ``stop`` that asks never to be called again ("لا تتصلوا علي مرة ثانية").
    do_not_call: bool = False


def interpret(text: str, answer_type: str, options: Sequence[Option] = ()) -> Interpretation:
    """Understand one answer to a question of ``answer_type`` (see :data:`READ_TYPES`).

    A self-correction ("لا، أقصد نعم", "سبعة، آسف قصدي ثمانية") is read from its last marker
    on when what follows it says something; without a marker, contradicting words stay unclear.
    """
    if answer_type not in READ_TYPES:
        raise ValueError(f"unknown answer type {answer_type!r}")
    words = tokens(text)
    if not words:
        return Interpretation(None, None, 0.0)
    if answer_type == "identity":
        table = IDENTITY_TABLE
    else:
        table = option_table(tuple(options)) if options else BASE_TABLE
    spans = scan(words, table)
    for tail in _corrections(spans):
        reading = _read(tail, text, answer_type, options)
        if reading.value is not None or reading.intent is not None:
            return reading
    return _read(spans, text, answer_type, options)


def _corrections(spans: Sequence[Span]) -> list[list[Span]]:
    """What follows each self-correction marker, the last one first."""
    tails = []
    for i, span in enumerate(spans):
        marker = span.label == "correction" or (
            span.label == "repeat" and span.text in _CORRECTING_REPEAT
        )
        rest = [s for s in spans[i + 1 :] if s.label not in _SILENT]
        if marker and rest:
            tails.append(list(spans[i + 1 :]))
    return tails[::-1]


def _read(
    spans: Sequence[Span], text: str, answer_type: str, options: Sequence[Option]
) -> Interpretation:
    intent, do_not_call = _intent(spans)
    value: AnswerValue | None
    if answer_type in ("yes_no", "identity"):
        value, score, used = _yes_no(spans)
    elif answer_type in ("rating", "numeric"):
        value, score, used = _number(spans)
    elif answer_type == "multiple_choice":
        value, score, used = _choice(spans, options)
    else:
        value, score, used = (None, 0.0, []) if intent else (text.strip(), 1.0, [])
    if intent is None and value is None and _asks_for_later(spans):
        intent = "callback"  # "بكرة المسا", "بعد ساعة": a when and nothing else
    if intent is not None:
        # A request outranks any answer words around it ("ممكن تعيد السؤال" is not "maybe").
        value, score = None, INTENT_ONLY
    elif value is not None and answer_type != "open_text":
        unknown = sum(1 for s in spans if s.label == "unknown")
        score = max(score - min(unknown * UNKNOWN_PENALTY, MAX_PENALTY), 0.05)
    matched = tuple(s.text for s in spans if s.label not in ("unknown", *_SILENT))
    return Interpretation(
        value, intent, round(score, 3), matched if used or intent else (), do_not_call
    )


def _meaningful(spans: Sequence[Span]) -> list[Span]:
    return [s for s in spans if s.label not in _SILENT]


def _is_negation(span: Span) -> bool:
    return span.label in ("negator", "never") or (span.label == "no" and span.words == ("لا",))


def _negated_want(spans: Sequence[Span]) -> bool:
    return any(span.label == "want" and _is_negation(before) for before, span in pairwise(spans))


def _never_call(spans: Sequence[Span]) -> bool:
    """ "Do not call me (again)": a negation or "enough" just before a call verb."""
    sig = _meaningful(spans)
    for i, span in enumerate(sig):
        if span.label != "call":
            continue
        window = sig[max(i - 2, 0) : i]
        if any(_is_negation(s) for s in window) or any(s.label == "stop" for s in sig[:i]):
            return True
    return False


def _intent(spans: Sequence[Span]) -> tuple[Intent | None, bool]:
    """The caller's request, and whether it is never to be called again."""
    labels = {s.label for s in spans}
    negated = _negated_want(spans)
    calls = labels & {"call", "call_me"}
    if (
        "do_not_call" in labels
        or _never_call(spans)
        or (negated and "call" in labels)
        or {"remove", "my_number"} <= labels
    ):
        return "stop", True
    if "human" in labels:
        return "human", False
    if "person" in labels and not negated and labels & {"talk", "want", "call"}:
        return "human", False
    if labels & {"busy", "later", "absent"} or (calls and labels & _WHEN):
        return "callback", False
    if "stop" in labels or (negated and "enough" in labels):
        return "stop", False  # "كفاية", "خلاص ما ابي"
    if negated and labels & {"continue", "talk"} and "person" not in labels:
        return "stop", False  # "مش عايز أكمل"
    if "identify" in labels:
        return "identify", False
    if "repeat" in labels:
        return "repeat", False
    return None, False


def _asks_for_later(spans: Sequence[Span]) -> bool:
    """A day ("بكرة") or a duration ("بعد ساعة", "بعد عشر دقايق") said as the whole answer."""
    sig = _meaningful(spans)
    if any(s.label in _DAY_OR_DURATION for s in sig):
        return True
    for i, span in enumerate(sig):
        if span.label == "after":
            rest = sig[i + 1 : i + 3]
            if rest and rest[0].label == "unit":
                return True
            if len(rest) == 2 and rest[0].label == "number" and rest[1].label == "unit":
                return True
    return False


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
            if after is None and span.text in _BARE_NEGATIONS and len(sig) == 1:
                reading = ("no", BARE_NEGATION)  # "مب", "مو" as the whole answer
            elif after is not None and after.label == "want" and i + 2 == len(sig):
                reading = ("no", STRONG)  # "ما أبي", "مش عايز": a plain refusal
            if reading is not None:
                found.append(reading)
                used.extend((span, after) if after else (span,))
                skip = True
        elif span.label in _POLAR:
            strength = WEAK if span.label == "weak_yes" else STRONG
            label = {"weak_yes": "yes", "relative": "no"}.get(span.label, span.label)
            found.append((label, strength))
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
        after = sig[i + 1] if i + 1 < len(sig) else None
        if "unit" in (getattr(before, "label", None), getattr(after, "label", None)):
            continue  # "بعد خمس دقايق", "الساعة سبعة": a time, not a rating
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
               lexicon.WANT, lexicon.BUSY, lexicon.LATER, lexicon.CALL_ME, lexicon.CALL_DAY,
               lexicon.IDENTIFY, lexicon.DO_NOT_CALL)  # fmt: skip
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
