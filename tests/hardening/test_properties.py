"""Property tests for the parsers the codec tests do not cover: answer understanding, the
environment, and questionnaire templates. Whatever comes in, each either answers or raises
its own documented error, never anything else."""

from __future__ import annotations

import copy
import inspect
import json
import re
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hana_voice.errors import SettingsError, TemplateError
from hana_voice.questionnaire.loading import parse_questionnaire
from hana_voice.questionnaire.template import ANSWER_TYPES, Option
from hana_voice.questionnaire.understanding import Interpretation, interpret
from hana_voice.settings import Settings
from tests.protocols.strategies import json_values

SHIPPED_PATH = (
    Path(__file__).parents[2] / "hana_voice" / "questionnaires" / "post_discharge_followup.json"
)
SHIPPED: dict[str, Any] = json.loads(SHIPPED_PATH.read_text(encoding="utf-8"))
#: Every variable Settings.from_env reads, taken from its source so that none is missed.
ENV_NAMES = sorted(set(re.findall(r'\(\s*"([A-Z][A-Z_]+)"', inspect.getsource(Settings.from_env))))

#: Arabic letters, harakat, Arabic-Indic and Latin digits, punctuation and spaces: the
#: alphabet of transcripts, with arbitrary Unicode mixed in.
arabic = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0x0600, max_codepoint=0x06FF),
        st.sampled_from(list(" ،؟.!0123456789#*")),
    ),
    max_size=60,
)
answer_texts = st.one_of(arabic, st.text(max_size=60))
options = st.lists(
    st.builds(
        Option,
        id=st.text(min_size=1, max_size=8),
        text=arabic,
        synonyms=st.lists(arabic, max_size=3).map(tuple),
    ),
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(text=answer_texts, answer_type=st.sampled_from(ANSWER_TYPES), choices=options)
def test_interpret_always_answers(text: str, answer_type: str, choices: list[Option]) -> None:
    result = interpret(text, answer_type, choices)
    assert isinstance(result, Interpretation)
    assert 0.0 <= result.confidence <= 1.0
    if result.intent is not None:
        assert result.value is None


env_values = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.floats().map(str),
    st.sampled_from(["", " ", "true", "no", "0", "-1", "1e309", "nan", "http://x", "\x00"]),
)


@settings(max_examples=300, deadline=None)
@given(env=st.dictionaries(st.sampled_from(ENV_NAMES), env_values, max_size=8))
def test_settings_raise_only_settings_error(env: dict[str, str]) -> None:
    try:
        parsed = Settings.from_env(env)
    except SettingsError as exc:
        assert exc.variable in env or exc.variable in ENV_NAMES
        return
    assert isinstance(parsed, Settings)


def test_settings_names_were_found() -> None:
    assert {"MAX_CONCURRENT_SESSIONS", "NEXTJS_API_URL", "PORT"} <= set(ENV_NAMES)


@settings(max_examples=200, deadline=None)
@given(data=json_values)
def test_random_json_is_a_template_error(data: object) -> None:
    try:
        parse_questionnaire(data, "random.json")
    except TemplateError:
        return
    raise AssertionError("random JSON made a questionnaire")


def _paths(node: object, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


SHIPPED_PATHS = _paths(SHIPPED)


@settings(max_examples=400, deadline=None)
@given(
    edits=st.lists(
        st.tuples(
            st.sampled_from(SHIPPED_PATHS),
            st.one_of(st.just("<delete>"), json_values, st.text(max_size=5)),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_mutated_shipped_template_loads_or_is_a_template_error(
    edits: list[tuple[tuple[str | int, ...], object]],
) -> None:
    """The shipped template with random fields replaced or removed: a TemplateError naming
    the problem, or (when the change is harmless) a questionnaire."""
    data = copy.deepcopy(SHIPPED)
    for path, value in edits:
        parent: Any = data
        try:
            for step in path[:-1]:
                parent = parent[step]
            if value == "<delete>":
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed or reshaped this path
    try:
        parse_questionnaire(data, "mutated.json")
    except TemplateError as exc:
        assert str(exc).startswith("mutated.json: ")
