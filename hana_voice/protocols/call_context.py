"""A call's context from a provider's custom variables, with patient contact data taken out.

Maqsam campaigns (``data.context.custom``), Twilio ``<Parameter>`` elements
(``start.customParameters``) and the browser ``start.context`` all carry free-form key/value
pairs chosen by whoever set the call up. Two things are read from them:

* the questionnaire, from the first non-empty string (or whole number, as Maqsam's examples
  send them) under one of :data:`QUESTIONNAIRE_KEYS`;
* the rest of the context (``patient_id``, ``hospital_id``, ``campaign_id``, ...), which the
  results store keeps beside the answers.

Phone numbers are patient data the service has no use for, so they never enter a context:
a key that names a number or a party of the call (:func:`is_contact_key`) is dropped, and so is
a value written like a phone number under any key (see :mod:`hana_voice.privacy`). Keys that
name credentials are dropped too, so a token passed as a parameter cannot reach a log line or
the results store.
Plain numeric ids (``"1234567"``) are kept: they look like numbers but are what the hospital
uses to find the patient.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hana_voice.privacy import is_contact_key, is_secret_key, looks_like_phone_number

__all__ = [
    "QUESTIONNAIRE_KEYS",
    "clean_context",
    "is_contact_key",
    "is_secret_key",
    "questionnaire_from",
]

#: Custom keys that name the questionnaire, in order of precedence.
QUESTIONNAIRE_KEYS = ("questionnaire_id", "questionnaire", "template_id", "survey_id")

_MAX_KEY_LEN = 64


def questionnaire_from(custom: Mapping[str, Any]) -> str | None:
    """The questionnaire id named by custom variables, or None."""
    for key in QUESTIONNAIRE_KEYS:
        value = custom.get(key)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            # Maqsam's examples send context values as JSON numbers: 7 selects "7".
            return str(value)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def clean_context(custom: Mapping[str, Any]) -> dict[str, Any]:
    """The custom variables without contact data, credentials or questionnaire keys."""
    cleaned: dict[str, Any] = {}
    for key, value in custom.items():
        if not isinstance(key, str) or not key or len(key) > _MAX_KEY_LEN:
            continue
        if key in QUESTIONNAIRE_KEYS or is_contact_key(key) or is_secret_key(key):
            continue
        if looks_like_phone_number(value) or isinstance(value, dict | list):
            # Nested values could hide contact data under any key; nothing downstream needs them.
            continue
        cleaned[key] = value
    return cleaned
