"""Choosing a call's questionnaire from the explicit id, the call context or the default."""

from __future__ import annotations

import dataclasses

import pytest

from hana_voice.errors import HanaError
from hana_voice.questionnaire import Questionnaire, UnknownQuestionnaire, select_questionnaire


@pytest.fixture
def loaded(mini: Questionnaire) -> dict[str, Questionnaire]:
    return {"mini": mini, "other": dataclasses.replace(mini, id="other")}


def test_explicit_id_wins(loaded: dict[str, Questionnaire]) -> None:
    chosen = select_questionnaire(loaded, "other", {"questionnaire_id": "mini"}, "mini")
    assert chosen.id == "other"


@pytest.mark.parametrize("key", ["questionnaire_id", "questionnaire", "template_id", "survey_id"])
def test_context_keys(loaded: dict[str, Questionnaire], key: str) -> None:
    assert select_questionnaire(loaded, None, {key: " other "}, "mini").id == "other"


@pytest.mark.parametrize("nest", ["custom", "custom_parameters", "customParameters", "metadata"])
def test_nested_provider_parameters(loaded: dict[str, Questionnaire], nest: str) -> None:
    assert select_questionnaire(loaded, None, {nest: {"survey_id": "other"}}, "mini").id == "other"


def test_key_order_and_default(loaded: dict[str, Questionnaire]) -> None:
    context = {"survey_id": "mini", "questionnaire_id": "other"}
    assert select_questionnaire(loaded, None, context, "mini").id == "other"
    assert select_questionnaire(loaded, "", {"questionnaire_id": ""}, "mini").id == "mini"
    assert select_questionnaire(loaded, None, {"questionnaire_id": True}, "mini").id == "mini"


def test_unknown_id_is_a_hana_error(loaded: dict[str, Questionnaire]) -> None:
    with pytest.raises(UnknownQuestionnaire) as caught:
        select_questionnaire(loaded, None, {"template_id": 42}, "mini")
    assert isinstance(caught.value, HanaError)
    assert caught.value.code == "unknown_questionnaire"
    assert caught.value.questionnaire_id == "42" and caught.value.known == ("mini", "other")
    with pytest.raises(UnknownQuestionnaire):
        select_questionnaire(loaded, None, {}, "missing_default")
