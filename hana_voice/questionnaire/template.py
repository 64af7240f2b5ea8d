"""Questionnaire templates: the frozen model a dialog runs, read from JSON files.

The JSON format is documented field by field in ``docs/questionnaires.md``; it follows the
fields the Hana front end stores for survey questions (id, order, text, type, options) and
adds what a voice call needs (speech text, keypad mapping, critical answers, retries,
timeouts, prompts). :mod:`hana_voice.questionnaire.loading` validates files into these
objects; a bad file raises :class:`~hana_voice.errors.TemplateError` naming the file, the
field and the problem, which stops start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from hana_voice.questionnaire.branching import AskIf

AnswerType = Literal["yes_no", "rating", "numeric", "multiple_choice", "open_text"]
ANSWER_TYPES: tuple[AnswerType, ...] = (
    "yes_no",
    "rating",
    "numeric",
    "multiple_choice",
    "open_text",
)
YES_NO_VALUES = ("yes", "no", "uncertain")
#: What a global keypad key may ask for, on every question.
KEYPAD_INTENTS = ("human", "repeat", "stop")
#: An answer as recorded: "yes"/"no"/"uncertain", an option id, an integer, or free text.
AnswerValue = str | int

RATING_MIN = 0
RATING_MAX = 10
DEFAULT_MAX_RETRIES = 2
DEFAULT_RESPONSE_TIMEOUT = 8.0
DEFAULT_ESCALATE_AFTER_UNANSWERED = 3
DEFAULT_GLOBAL_KEYPAD: Mapping[str, str] = {"0": "human", "*": "repeat"}
DEFAULT_YES_NO_KEYPAD: Mapping[str, str] = {"1": "yes", "2": "no"}
#: Values from the call's context a prompt may name: ``{patient_name}`` etc.
PLACEHOLDERS = ("patient_name", "hospital_name", "doctor_name", "appointment_date")
#: Fallbacks for the placeholders of the built-in prompts (a template's own texts need their
#: own, checked at load).
BUILTIN_FALLBACKS: Mapping[str, str] = {"hospital_name": "المستشفى", "patient_name": "المريض"}


@dataclass(frozen=True)
class Prompt:
    """Something said to the caller: the written text and, optionally, a vocalised form."""

    text: str
    speech_text: str | None = None

    @property
    def spoken(self) -> str:
        """What the synthesiser reads: vocalised text is pronounced better when present."""
        return self.speech_text or self.text


@dataclass(frozen=True)
class Option:
    """One choice of a multiple-choice question; ``synonyms`` are other ways to say it."""

    id: str
    text: str
    speech_text: str | None = None
    synonyms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Critical:
    """Answers that must reach a human: listed values, or a number at or past a bound."""

    answers: frozenset[str] = frozenset()
    at_least: int | None = None
    at_most: int | None = None

    def matches(self, value: AnswerValue | None) -> bool:
        if value is None:
            return False
        if isinstance(value, int):
            return (self.at_least is not None and value >= self.at_least) or (
                self.at_most is not None and value <= self.at_most
            )
        return value in self.answers

    @property
    def empty(self) -> bool:
        return not self.answers and self.at_least is None and self.at_most is None


@dataclass(frozen=True)
class Question:
    id: str
    order: int
    text: str
    type: AnswerType
    speech_text: str | None = None
    options: tuple[Option, ...] = ()
    #: Keypad digit -> answer value (yes/no, option id, or a number).
    keypad: Mapping[str, AnswerValue] = field(default_factory=dict)
    critical: Critical = Critical()
    #: Asked only when these conditions on earlier answers hold; otherwise recorded "skipped".
    ask_if: AskIf | None = None
    max_retries: int = DEFAULT_MAX_RETRIES
    response_timeout: float = DEFAULT_RESPONSE_TIMEOUT
    #: Accepted range for rating and numeric answers (inclusive).
    minimum: int | None = None
    maximum: int | None = None
    #: The front end's own word for each answer value (``"yes"`` -> ``"نعم"``, an option id ->
    #: its ``expected_responses`` entry, ``"3"`` -> ``"3"``), for the results hand-over. Empty
    #: for local questionnaires. For yes/no it also limits what is accepted: a template whose
    #: list has no "not sure" word re-asks an uncertain answer.
    replies: Mapping[str, str] = field(default_factory=dict)

    def reply(self, value: AnswerValue) -> str:
        """The answer in the template's own words where it has them, else as recorded."""
        return self.replies.get(str(value), str(value))

    @property
    def prompt(self) -> Prompt:
        return Prompt(self.text, self.speech_text)

    def option(self, option_id: str) -> Option | None:
        return next((o for o in self.options if o.id == option_id), None)

    def accepts(self, value: AnswerValue) -> bool:
        """Whether ``value`` is a possible answer to this question."""
        if self.type == "yes_no":
            return value in YES_NO_VALUES and (not self.replies or value in self.replies)
        if self.type == "multiple_choice":
            return isinstance(value, str) and self.option(value) is not None
        if self.type == "open_text":
            return isinstance(value, str) and bool(value.strip())
        if not isinstance(value, int):
            return False
        low = RATING_MIN if self.minimum is None else self.minimum
        return value >= low and (self.maximum is None or value <= self.maximum)


@dataclass(frozen=True)
class Prompts:
    """The template-level prompts, with Arabic defaults a template may override."""

    no_response: Prompt = Prompt("لم أسمع إجابتك.", "لَمْ أَسْمَعْ إِجَابَتَكَ.")
    not_understood: Prompt = Prompt("عذرًا، لم أفهم إجابتك.", "عُذْرًا، لَمْ أَفْهَمْ إِجَابَتَكَ.")
    #: ``{answer}`` is replaced by the answer as heard.
    confirmation: Prompt = Prompt(
        "سمعت: {answer}. هل هذا صحيح؟ اضغط ١ لنعم و٢ لا.",
        "سَمِعْتُ: {answer}. هَلْ هَذَا صَحِيح؟ اِضْغَطْ وَاحِد لِنَعَم، وَاثْنَيْن لِلَا.",
    )
    escalation_transfer: Prompt = Prompt(
        "سأحوّلك الآن إلى أحد أفراد الفريق الطبي، يرجى الانتظار.",
        "سَأُحَوِّلُكَ الآنَ إِلَى أَحَدِ أَفْرَادِ الفَرِيقِ الطِّبِّيّ، يُرْجَى الانْتِظَار.",
    )
    escalation_message: Prompt = Prompt(
        "سيتواصل معك أحد أفراد الفريق الطبي في أقرب وقت. إن كانت حالتك طارئة فاتصل بالإسعاف ٩٩٧.",
        "سَيَتَوَاصَلُ مَعَكَ أَحَدُ أَفْرَادِ الفَرِيقِ الطِّبِّيِّ فِي أَقْرَبِ وَقْت. "
        "إِنْ كَانَتْ حَالَتُكَ طَارِئَةً فَاتَّصِلْ بِالإِسْعَاف، تِسْعَة تِسْعَة سَبْعَة.",
    )
    #: Said when a promised transfer could not be made: a person will call back.
    transfer_failed: Prompt = Prompt(
        "عذرًا، لم نتمكن من تحويل المكالمة الآن. سيتصل بك أحد أفراد الفريق الطبي في أقرب وقت. "
        "إن كانت حالتك طارئة فاتصل بالإسعاف على ٩٩٧. مع السلامة.",
        "عُذْرًا، لَمْ نَتَمَكَّنْ مِنْ تَحْوِيلِ المُكَالَمَةِ الآن. سَيَتَّصِلُ بِكَ أَحَدُ أَفْرَادِ "
        "الفَرِيقِ الطِّبِّيِّ فِي أَقْرَبِ وَقْت. إِنْ كَانَتْ حَالَتُكَ طَارِئَةً فَاتَّصِلْ "
        "بِالإِسْعَاف، عَلَى تِسْعَة تِسْعَة سَبْعَة. مَعَ السَّلَامَة.",
    )
    consent_refused: Prompt = Prompt(
        "لا بأس، شكرًا لوقتك. مع السلامة.", "لَا بَأْس، شُكْرًا لِوَقْتِك. مَعَ السَّلَامَة."
    )
    stopped: Prompt = Prompt(
        "حسنًا، سننهي المكالمة الآن. شكرًا لك، مع السلامة.",
        "حَسَنًا، سَنُنْهِي المُكَالَمَةَ الآن. شُكْرًا لَك، مَعَ السَّلَامَة.",
    )
    #: The identity check, asked only when the call's context names the patient.
    identity: Prompt = Prompt(
        "السلام عليكم، هل أتحدث مع {patient_name}؟ قل نعم أو لا، أو اضغط ١ لنعم و٢ لا.",
        "السَّلَامُ عَلَيْكُم، هَلْ أَتَحَدَّثُ مَعَ {patient_name}؟ قُلْ نَعَم أَوْ لَا، أَوِ اضْغَطْ وَاحِد لِنَعَم، وَاثْنَيْن لِلَا.",
    )
    #: "Who is this?" before the identity is confirmed: who calls, nothing about health.
    identify_identity: Prompt = Prompt(
        "معك هناء، المساعدة الصوتية من {hospital_name}.",
        "مَعَكَ هَنَاء، المُسَاعِدَةُ الصَّوْتِيَّةُ مِنْ {hospital_name}.",
    )
    #: "Who is this?" after it: who calls and why.
    identify: Prompt = Prompt(
        "معك هناء، المساعدة الصوتية من {hospital_name}. نتصل بك للاطمئنان على صحتك.",
        "مَعَكَ هَنَاء، المُسَاعِدَةُ الصَّوْتِيَّةُ مِنْ {hospital_name}. نَتَّصِلُ بِكَ لِلاطْمِئْنَانِ عَلَى صِحَّتِك.",
    )
    wrong_person: Prompt = Prompt(
        "نعتذر عن الإزعاج، يبدو أننا اتصلنا بالشخص الخطأ. مع السلامة.",
        "نَعْتَذِرُ عَنِ الإِزْعَاج، يَبْدُو أَنَّنَا اتَّصَلْنَا بِالشَّخْصِ الخَطَأ. مَعَ السَّلَامَة.",
    )
    callback: Prompt = Prompt(
        "حسنًا، سنعاود الاتصال بك لاحقًا. شكرًا لك، مع السلامة.",
        "حَسَنًا، سَنُعَاوِدُ الاتِّصَالَ بِكَ لَاحِقًا. شُكْرًا لَك، مَعَ السَّلَامَة.",
    )
    do_not_call: Prompt = Prompt(
        "حسنًا، لن نتصل بك مرة أخرى. نعتذر عن الإزعاج، مع السلامة.",
        "حَسَنًا، لَنْ نَتَّصِلَ بِكَ مَرَّةً أُخْرَى. نَعْتَذِرُ عَنِ الإِزْعَاج، مَعَ السَّلَامَة.",
    )

    def get(self, name: str) -> Prompt:
        prompt = getattr(self, name)
        assert isinstance(prompt, Prompt)
        return prompt


PROMPT_NAMES = tuple(Prompts.__dataclass_fields__)


@dataclass(frozen=True)
class Questionnaire:
    id: str
    version: str
    language: str
    #: Greeting that asks the caller's consent: a yes/no question.
    greeting: Prompt
    closing: Prompt
    questions: tuple[Question, ...]
    title: str | None = None
    prompts: Prompts = Prompts()
    max_retries: int = DEFAULT_MAX_RETRIES
    response_timeout: float = DEFAULT_RESPONSE_TIMEOUT
    #: Answers understood with less confidence than this are read back for confirmation
    #: (0 never confirms).
    confirm_below: float = 0.0
    #: This many questions left unanswered in a row hand the call to a human (0: never).
    escalate_after_unanswered: int = DEFAULT_ESCALATE_AFTER_UNANSWERED
    #: Keys that work on every step: key -> "human" / "repeat" / "stop".
    keypad: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_GLOBAL_KEYPAD))
    #: Keys for yes/no at the consent and confirmation steps, and yes/no questions without
    #: their own mapping.
    yes_no_keypad: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_YES_NO_KEYPAD))
    #: The file it was read from, for messages.
    source: str = ""
    #: Ask "am I speaking with {patient_name}?" first, when the call's context names one.
    identity_check: bool = True
    #: Placeholder -> the words said when the call's context lacks the value.
    fallbacks: Mapping[str, str] = field(default_factory=lambda: dict(BUILTIN_FALLBACKS))

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.questions if q.id == question_id), None)
