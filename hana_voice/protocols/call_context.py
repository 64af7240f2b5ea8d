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
a value written like an international number (``+9665...``). Keys that name credentials are
dropped too, so a token passed as a parameter cannot reach a log line or the results store.
Plain numeric ids (``"1234567"``) are kept: they look like numbers but are what the hospital
uses to find the patient.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "QUESTIONNAIRE_KEYS",
    "clean_context",
    "is_contact_key",
    "is_secret_key",
    "questionnaire_from",
]

#: Custom keys that name the questionnaire, in order of precedence.
QUESTIONNAIRE_KEYS = ("questionnaire_id", "questionnaire", "template_id", "survey_id")

_CONTACT_KEY = re.compile(
    r"phone|mobile|msisdn|caller|callee|number|cell|\btel|^(from|to|ani|dnis|forwarded_from)$",
    re.IGNORECASE,
)
_SECRET_KEY = re.compile(
    r"token|secret|password|passwd|api_?key|auth|credential|signature", re.IGNORECASE
)
_E164_VALUE = re.compile(r"^\s*(\+|00)[\d\s().-]{7,20}$")
_MAX_KEY_LEN = 64


def _words(key: str) -> str:
    # camelCase and dashes to snake words, so "callerNumber" and "caller-id" match like
    # "caller_number" does, and \b sees the word boundaries.
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key)
    return re.sub(r"[^A-Za-z0-9]+", "_", spaced).lower()


def is_contact_key(key: str) -> bool:
    """Whether a key names a phone number or a party of the call (From, caller_number...)."""
    words = _words(key)
    return bool(_CONTACT_KEY.search(words) or _CONTACT_KEY.search(words.replace("_", " ")))


def is_secret_key(key: str) -> bool:
    """Whether a key names a credential (token, apiKey, password...)."""
    return bool(_SECRET_KEY.search(_words(key)) or _SECRET_KEY.search(key))


def _looks_like_phone_number(value: object) -> bool:
    return isinstance(value, str) and bool(_E164_VALUE.match(value))


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
        if _looks_like_phone_number(value) or isinstance(value, dict | list):
            # Nested values could hide contact data under any key; nothing downstream needs them.
            continue
        cleaned[key] = value
    return cleaned
