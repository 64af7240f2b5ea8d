"""What the questionnaire dialog says: prompts composed, placeholders filled, ids numbered.

Prompt ids are unique per call (``"7:q:pain_level"``), so a late event for an older prompt can
be told apart. A prompt filled with a value from the call's context is marked ``personal``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from hana_voice.questionnaire import lexicon
from hana_voice.questionnaire.dialog_messages import Expectation, Speak
from hana_voice.questionnaire.dialog_state import DialogState, Pending, Step
from hana_voice.questionnaire.personal import render
from hana_voice.questionnaire.template import Prompt, Question
from hana_voice.questionnaire.understanding import expected_phrases, spoken_answer


def speak(
    state: DialogState,
    name: str,
    parts: Sequence[Prompt | None],
    expects: Expectation | None,
    interruptible: bool = True,
) -> Step:
    seq = state.seq + 1
    prompt_id = f"{seq}:{name}"
    fallbacks = state.questionnaire.fallbacks
    rendered = [render(p, state.values, fallbacks) for p in parts if p is not None]
    present = [p for p, _ in rendered]
    speak = Speak(
        prompt_id,
        " ".join(p.spoken for p in present),
        " ".join(p.text for p in present),
        interruptible,
        expects,
        personal=any(personal for _, personal in rendered),
    )
    return replace(state, seq=seq, prompt_id=prompt_id), (speak,)


def ask_identity(state: DialogState, prefix: Prompt | None) -> Step:
    template = state.questionnaire
    expects = Expectation("identity", "yes_no", _IDENTITY_PHRASES, template.response_timeout)
    identity = template.prompts.identity
    return speak(replace(state, phase="identity"), "identity", (prefix, identity), expects)


def ask_consent(state: DialogState, prefix: Prompt | None) -> Step:
    template = state.questionnaire
    expects = Expectation("consent", "yes_no", _YES_NO_PHRASES, template.response_timeout)
    return speak(replace(state, phase="consent"), "greeting", (prefix, template.greeting), expects)


def ask(state: DialogState, index: int, prefix: Prompt | None, fresh: bool = True) -> Step:
    q = state.questionnaire.questions[index]
    if fresh:
        state = replace(state, attempts=0, repeats=0)
    state = replace(state, phase="question", index=index, pending=None, keypad_buffer="")
    expects = Expectation(q.id, q.type, tuple(expected_phrases(q)), q.response_timeout)
    return speak(state, f"q:{q.id}", (prefix, q.prompt), expects)


def ask_confirmation(state: DialogState, pending: Pending, prefix: Prompt | None = None) -> Step:
    q, template = state.question, state.questionnaire
    heard = spoken_answer(q, pending.value)
    shown = str(pending.value) if isinstance(pending.value, int) else heard
    if q.type == "multiple_choice" and isinstance(pending.value, str):
        option = q.option(pending.value)
        shown = option.text if option else shown
    confirmation = template.prompts.confirmation
    prompt = Prompt(
        confirmation.text.replace("{answer}", shown),
        confirmation.spoken.replace("{answer}", heard),
    )
    expects = Expectation(f"confirm:{q.id}", "yes_no", _YES_NO_PHRASES, q.response_timeout)
    state = replace(state, phase="confirm", pending=pending)
    return speak(state, f"confirm:{q.id}", (prefix, prompt), expects)


_YES_NO_PHRASES = tuple(expected_phrases(Question(id="consent", order=0, text="", type="yes_no")))
#: The identity check also hears "not here" and "his brother".
_IDENTITY_PHRASES = (
    *lexicon.grammar_words(_YES_NO_PHRASES[:-1], lexicon.ABSENT, lexicon.RELATIVE),
    "[unk]",
)
