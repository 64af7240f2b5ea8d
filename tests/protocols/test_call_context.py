"""call_context: questionnaire selection and the removal of contact data and credentials."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hana_voice.protocols.call_context import (
    clean_context,
    is_contact_key,
    is_secret_key,
    questionnaire_from,
)


@pytest.mark.parametrize(
    "key",
    [
        "caller_number", "callee_number", "caller", "callee", "callerNumber", "From", "To",
        "to", "patient_phone", "Phone", "mobile", "mobileNo", "msisdn", "telephone", "tel",
        "patient-tel", "ANI", "DNIS", "ForwardedFrom", "cell",
    ],
)  # fmt: skip
def test_contact_keys(key: str) -> None:
    assert is_contact_key(key)


@pytest.mark.parametrize(
    "key", ["patient_id", "hospital_id", "campaign_id", "language", "hotel", "total", "direction"]
)
def test_ordinary_keys(key: str) -> None:
    assert not is_contact_key(key)
    assert not is_secret_key(key)


@pytest.mark.parametrize(
    "key", ["token", "apiKey", "api_key", "Authorization", "secret", "password", "jwtToken"]
)
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)


def test_questionnaire_keys_in_order_of_precedence() -> None:
    assert questionnaire_from({"survey_id": "c", "template_id": "b", "questionnaire": "a"}) == "a"
    assert questionnaire_from({"questionnaire_id": " x ", "questionnaire": "a"}) == "x"
    assert questionnaire_from({"questionnaire_id": "", "template_id": "t"}) == "t"
    # Numbers select like strings (Maqsam's example context values are JSON numbers).
    assert questionnaire_from({"questionnaire_id": 5}) == "5"
    assert questionnaire_from({"questionnaire_id": 7.0, "questionnaire": "a"}) == "7"
    assert questionnaire_from({"questionnaire_id": 7.5, "questionnaire": "a"}) == "a"
    assert questionnaire_from({"questionnaire_id": True, "questionnaire": "a"}) == "a"
    assert questionnaire_from({}) is None


def test_clean_context_keeps_ids_and_drops_the_rest() -> None:
    custom = {
        "patient_id": "1234567",  # a numeric id is kept: it is not written like a phone number
        "hospital_id": 17,
        "campaign_id": "camp-42",
        "questionnaire_id": "post_discharge_followup",
        "contact": "+966 50 123 4567",
        "backup": "00966501234567",
        "From": "+966501234567",
        "token": "abc",
        "nested": {"phone": "+966501234567"},
        "list": ["+966501234567"],
        "x" * 65: "too long a key",
    }
    assert clean_context(custom) == {
        "patient_id": "1234567",
        "hospital_id": 17,
        "campaign_id": "camp-42",
    }


@given(st.dictionaries(st.text(max_size=20), st.text(max_size=20), max_size=8))
def test_clean_context_never_keeps_an_international_number(custom: dict[str, str]) -> None:
    custom = {**custom, "anything": "+966501234567"}
    assert "+966501234567" not in clean_context(custom).values()
