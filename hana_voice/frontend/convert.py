"""A front-end template row (``template_versions``) turned into the service's Questionnaire.

Pure code: a row in, a :class:`~hana_voice.questionnaire.Questionnaire` out, or a
:class:`~hana_voice.errors.TemplateError` naming the template id, the field
(``questions_json[1].type``) and the problem. What the front end stores is described in
../shared/frontend-contract.md, section 1; how each type is converted:

- what is said: ``text_ar``, else ``text`` (the front end then wrote Arabic there already);
- ``yes_no``: the template's own ``expected_responses`` are the words handed back; each is
  matched to yes / no / not sure by its meaning (else by position, the editor's order). A
  two-word list has no "not sure": such an answer is not accepted and the question is re-asked;
- ``rating``: ``min_rating``..``max_rating`` (default 1..5); ``expected_responses`` give the
  words handed back when they line up with the scale, else the digits;
- ``multiple_choice``: ``expected_responses`` are the options, each understood with the usual
  synonyms (:mod:`hana_voice.frontend.synonyms`) and by position ("the second", key 2);
- ``open_text`` keeps the transcript; ``numeric`` takes a whole number (bounds from
  ``min_rating``/``max_rating`` when present).

A template has no greeting, closing or consent text: those come from :class:`TemplateTexts`,
the service's Arabic defaults naming the template's ``name_ar``, which configuration may
override (TEMPLATES_GREETING, TEMPLATES_CLOSING, TEMPLATES_PROMPTS_FILE).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

from hana_voice.errors import TemplateError
from hana_voice.frontend.synonyms import synonyms_for
from hana_voice.questionnaire.loading import parse_prompts
from hana_voice.questionnaire.normalize import normalize
from hana_voice.questionnaire.template import (
    ANSWER_TYPES,
    AnswerType,
    Option,
    Prompt,
    Prompts,
    Question,
    Questionnaire,
)
from hana_voice.questionnaire.understanding import interpret

#: Answers understood with less confidence than this are read back, as in the bundled file.
CONFIRM_BELOW = 0.6
DEFAULT_RATING = (1, 5)
#: The editor's default list, used when a yes/no question carries none.
DEFAULT_YES_NO_WORDS = ("نعم", "لا", "غير متأكد")
_YES_NO_ORDER = ("yes", "no", "uncertain")

DEFAULT_GREETING = Prompt(
    "السلام عليكم، معك هناء، المساعدة الصوتية من المستشفى. نتصل بك بخصوص {name}. "
    "هل تسمح لي بطرح بعض الأسئلة القصيرة؟ قل نعم أو لا، أو اضغط ١ لنعم و٢ لا.",
    "السَّلَامُ عَلَيْكُم، مَعَكَ هَنَاء، المُسَاعِدَةُ الصَّوْتِيَّةُ مِنَ المُسْتَشْفَى. "
    "نَتَّصِلُ بِكَ بِخُصُوص {name}. هَلْ تَسْمَحُ لِي بِطَرْحِ بَعْضِ الأَسْئِلَةِ القَصِيرَة؟ "
    "قُلْ نَعَم أَوْ لَا، أَوِ اضْغَطْ وَاحِد لِنَعَم، وَاثْنَيْن لِلَا.",
)
DEFAULT_CLOSING = Prompt(
    "شكرًا لك على وقتك ومشاركتك في {name}. سيطّلع الفريق الطبي على إجاباتك. "
    "نتمنى لك دوام الصحة والعافية، مع السلامة.",
    "شُكْرًا لَكَ عَلَى وَقْتِكَ وَمُشَارَكَتِكَ فِي {name}. سَيَطَّلِعُ الفَرِيقُ الطِّبِّيُّ عَلَى "
    "إِجَابَاتِك. نَتَمَنَّى لَكَ دَوَامَ الصِّحَّةِ وَالعَافِيَة، مَعَ السَّلَامَة.",
)
#: Said in place of ``{name}`` when a template has no name at all.
UNNAMED = "استبيان المستشفى"


@dataclass(frozen=True)
class TemplateRow:
    """The columns of ``template_versions`` a call needs."""

    template_id: str
    version: int | None
    name: str | None
    name_ar: str | None
    is_published: bool
    questions_json: Any


@dataclass(frozen=True)
class TemplateTexts:
    """Greeting, closing and the other prompts of every front-end template.

    ``greeting`` and ``closing`` may hold ``{name}``, replaced by the template's ``name_ar``.
    """

    greeting: Prompt = DEFAULT_GREETING
    closing: Prompt = DEFAULT_CLOSING
    prompts: Prompts = field(default_factory=Prompts)

    @classmethod
    def configured(
        cls, greeting: str | None, closing: str | None, prompts_file: Path | None
    ) -> TemplateTexts:
        """The defaults with the operator's overrides; raise TemplateError on a bad file."""
        prompts = Prompts()
        if prompts_file is not None:
            source = str(prompts_file)
            try:
                data = json.loads(prompts_file.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise TemplateError(source, "-", f"cannot be read as JSON: {exc}") from None
            prompts = parse_prompts(data, source)
        return cls(
            greeting=Prompt(greeting) if greeting else DEFAULT_GREETING,
            closing=Prompt(closing) if closing else DEFAULT_CLOSING,
            prompts=prompts,
        )


def canonical_id(value: str) -> str | None:
    """The lower-case form of a uuid, or None when ``value`` is not one."""
    try:
        return str(uuid.UUID(value.strip()))
    except (ValueError, AttributeError):
        return None


class _Template:
    """Field access for one row that raises TemplateError naming the template and field."""

    def __init__(self, template_id: str) -> None:
        self.source = f"template {template_id}"

    def fail(self, where: str, problem: str) -> NoReturn:
        raise TemplateError(self.source, where, problem)


def convert(row: TemplateRow, texts: TemplateTexts | None = None) -> Questionnaire:
    """The questionnaire a call runs for ``row``; raise TemplateError when it is malformed."""
    texts = texts or TemplateTexts()
    t = _Template(row.template_id)
    raw = row.questions_json
    if isinstance(raw, str | bytes):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            t.fail("questions_json", "is not valid JSON")
    if not isinstance(raw, list) or not raw:
        t.fail("questions_json", "must be a non-empty list of questions")
    questions = [_question(t, item, f"questions_json[{i}]") for i, item in enumerate(raw)]
    seen: set[str] = set()
    for i, question in enumerate(questions):
        if question.id in seen:
            t.fail(f"questions_json[{i}].id", f"duplicate id {question.id!r}")
        seen.add(question.id)
    name = (row.name_ar or "").strip() or (row.name or "").strip() or UNNAMED
    return Questionnaire(
        id=row.template_id,
        version=str(row.version if row.version is not None else 1),
        language="ar",
        title=name,
        greeting=_named(texts.greeting, name),
        closing=_named(texts.closing, name),
        # Stable: equal orders keep the template's own sequence.
        questions=tuple(sorted(questions, key=lambda q: q.order)),
        prompts=texts.prompts,
        confirm_below=CONFIRM_BELOW,
        source=t.source,
    )


def _named(prompt: Prompt, name: str) -> Prompt:
    speech = prompt.speech_text.replace("{name}", name) if prompt.speech_text else None
    return Prompt(prompt.text.replace("{name}", name), speech)


def _question(t: _Template, item: object, path: str) -> Question:
    if not isinstance(item, dict):
        t.fail(path, "must be an object")
    qid = item.get("id")
    if isinstance(qid, int) and not isinstance(qid, bool):
        qid = str(qid)
    if not isinstance(qid, str) or not qid.strip():
        t.fail(f"{path}.id", "missing or empty")
    order = item.get("order")
    if isinstance(order, float) and order.is_integer():
        order = int(order)
    if isinstance(order, bool) or not isinstance(order, int):
        t.fail(f"{path}.order", "must be a whole number")
    text = _text(item, "text_ar") or _text(item, "text")
    if not text:
        t.fail(f"{path}.text", "no text_ar or text to say")
    qtype = item.get("type")
    if qtype not in ANSWER_TYPES:
        t.fail(
            f"{path}.type", f"unknown type {str(qtype)[:40]!r}; known: {', '.join(ANSWER_TYPES)}"
        )
    answer_type: AnswerType = qtype
    base = Question(id=qid.strip(), order=order, text=text, type=answer_type)
    words = item.get("expected_responses")
    if answer_type == "yes_no":
        return _yes_no(t, base, words, path)
    if answer_type == "multiple_choice":
        return _choice(t, base, words if words is not None else item.get("options"), path)
    if answer_type in ("rating", "numeric"):
        return _scale(t, base, item, words, path)
    return base  # open_text: the transcript is the answer


def _text(item: Mapping[str, Any], key: str) -> str:
    value = item.get(key)
    return value.strip() if isinstance(value, str) else ""


def _words(t: _Template, value: object, path: str, least: int) -> list[str]:
    where = f"{path}.expected_responses"
    if not isinstance(value, list) or not all(isinstance(w, str) and w.strip() for w in value):
        t.fail(where, "must be a list of non-empty strings")
    words = [w.strip() for w in value]
    if len(words) < least:
        t.fail(where, f"needs at least {least} answers, has {len(words)}")
    if len({normalize(w) for w in words}) != len(words):
        t.fail(where, "holds the same answer twice")
    return words


def _yes_no(t: _Template, base: Question, value: object, path: str) -> Question:
    words = list(DEFAULT_YES_NO_WORDS) if value is None else _words(t, value, path, 2)
    if len(words) > 3:
        t.fail(f"{path}.expected_responses", "a yes/no question takes 2 or 3 answers")
    meanings = [interpret(w, "yes_no").value for w in words]
    if len(set(meanings)) != len(words) or not set(meanings) <= set(_YES_NO_ORDER):
        # Words the service does not read as yes/no/not sure: the editor's order decides.
        meanings = list(_YES_NO_ORDER[: len(words)])
    if not {"yes", "no"} <= {str(m) for m in meanings}:
        t.fail(f"{path}.expected_responses", "must hold a yes and a no answer")
    return _with(base, replies={str(m): w for m, w in zip(meanings, words, strict=True)})


def _choice(t: _Template, base: Question, value: object, path: str) -> Question:
    if value is None or value == []:
        t.fail(f"{path}.expected_responses", "a multiple_choice question has no options")
    words = _words(t, value, path, 2)
    own = {normalize(w) for w in words}
    offered = [[s for s in synonyms_for(w) if normalize(s) not in own] for w in words]
    # A synonym two options share would pick whichever came first: neither keeps it.
    counts: dict[str, int] = {}
    for synonyms in offered:
        for s in {normalize(s) for s in synonyms}:
            counts[s] = counts.get(s, 0) + 1
    options = tuple(
        Option(w, w, None, tuple(s for s in synonyms if counts[normalize(s)] == 1))
        for w, synonyms in zip(words, offered, strict=True)
    )
    return _with(base, options=options, replies={w: w for w in words})


def _scale(
    t: _Template, base: Question, item: Mapping[str, Any], words: object, path: str
) -> Question:
    rating = base.type == "rating"
    low = _bound(t, item, "min_rating", path, DEFAULT_RATING[0] if rating else 0)
    high = _bound(t, item, "max_rating", path, DEFAULT_RATING[1] if rating else None)
    if low is not None and low < 0:
        t.fail(f"{path}.min_rating", f"{low} is below 0")
    if low is not None and high is not None and low >= high:
        t.fail(f"{path}.max_rating", f"max_rating {high} must be greater than min_rating {low}")
    replies: dict[str, str] = {}
    if rating and high is not None and low is not None:
        values = [str(n) for n in range(low, high + 1)]
        listed = words if isinstance(words, list) else []
        aligned = len(listed) == len(values) and all(isinstance(w, str) and w for w in listed)
        replies = dict(zip(values, listed if aligned else values, strict=True))
    return _with(base, minimum=low, maximum=high, replies=replies)


def _bound(
    t: _Template, item: Mapping[str, Any], key: str, path: str, default: int | None
) -> int | None:
    value = item.get(key)
    if value is None:
        return default
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        t.fail(f"{path}.{key}", "must be a whole number")
    return value


def _with(base: Question, **changes: Any) -> Question:
    return replace(base, **changes)
