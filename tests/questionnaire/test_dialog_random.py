"""Random event sequences: the dialog never raises and always ends within bounded steps."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hana_voice.questionnaire import Questionnaire, parse_questionnaire
from hana_voice.questionnaire.dialog import (
    MAX_REPEATS,
    Action,
    CallerHungUp,
    Event,
    Finished,
    KeyPressed,
    NoResponse,
    PromptPlayed,
    RecordAnswer,
    TransferDone,
    TransferFailed,
    UserSaid,
    start,
    step,
)
from tests.questionnaire.conftest import minimal_data
from tests.questionnaire.labelled import labelled

MINI = parse_questionnaire(minimal_data(), "mini.json")
ANSWERS = sorted({r.text for name in ("yes_no", "rating", "multiple_choice")
                  for r in labelled(name)})  # fmt: skip
CURRENT = "<current prompt>"

texts = st.one_of(st.sampled_from(ANSWERS), st.text(max_size=20))
prompt_ids = st.one_of(st.just(CURRENT), st.sampled_from(["1:greeting", "2:q:chest", "x"]))
events = st.one_of(
    st.builds(UserSaid, texts, st.floats(0.0, 1.0)),
    st.builds(KeyPressed, st.sampled_from([*"0123456789*#", "", "12", "a"])),
    st.builds(PromptPlayed, prompt_ids),
    st.builds(NoResponse, prompt_ids),
    st.just(TransferDone()),
    st.builds(TransferFailed),
)


def _bound(q: Questionnaire) -> int:
    """Silence alone ends a call within this many events, whatever happened before."""
    per_step = (MAX_REPEATS + 1) * (max(q.max_retries, *(x.max_retries for x in q.questions)) + 2)
    return per_step * (len(q.questions) + 1) * 2 + 2


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events, max_size=40), st.booleans(), st.sampled_from(["telephony", "browser"]))
def test_random_events_never_raise_and_always_end(
    sequence: list[Event], hang_up: bool, channel: str
) -> None:
    state, first = start(MINI, channel)  # type: ignore[arg-type]  # drawn from the two channels
    actions: list[Action] = list(first)
    for event in sequence:
        if isinstance(event, PromptPlayed | NoResponse) and event.prompt_id == CURRENT:
            event = type(event)(state.prompt_id)
        state, new = step(state, event)
        actions.extend(new)
    if hang_up:
        state, new = step(state, CallerHungUp())
        actions.extend(new)
    for _ in range(_bound(MINI)):
        if state.ended:
            break
        nudge: Event
        if state.phase == "transferring":
            nudge = TransferFailed()
        elif state.phase == "ending":
            nudge = PromptPlayed(state.prompt_id)
        else:
            nudge = NoResponse(state.prompt_id)
        state, new = step(state, nudge)
        actions.extend(new)
    assert state.ended
    finishes = [a for a in actions if isinstance(a, Finished)]
    assert len(finishes) == 1 and actions[-1] is finishes[0]
    recorded = [a for a in actions if isinstance(a, RecordAnswer)]
    assert finishes[0].answers == tuple(recorded)
    ids = [r.question_id for r in recorded]
    assert len(ids) == len(set(ids)) and set(ids) <= {q.id for q in MINI.questions}
    assert step(state, UserSaid("نعم")) == (state, ())
