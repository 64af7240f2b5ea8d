"""Patient contact data kept out of what the service stores, forwards and logs.

One place decides what counts as contact data, for the codecs (a call's context, see
:mod:`hana_voice.protocols.call_context`) and for the results store and hand-over
(:func:`hana_voice.results.handover.strip_phone_numbers`):

* a key that names a number or a party of the call (:func:`is_contact_key`: ``caller_number``,
  ``From``, ``patient_phone``, ``mobileNo``...);
* a value written like a phone number, under *any* key (:func:`looks_like_phone_number`):
  international (``+966 50 123 4567``, ``00966501234567``), national with a trunk zero
  (``0501234567``, ``(011) 456-7890``, ``050-123-4567``), a JSON number of 11 or more digits
  (an international number without its ``+``), or a text with an international number in it.

Plain numeric ids (``"1234567"``, ``17``, a 10-digit national id) and dates are kept: they are
what the hospital uses to find the patient, and they are not written like phone numbers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["is_contact_key", "is_secret_key", "looks_like_phone_number", "strip_contact_data"]

_CONTACT_KEY = re.compile(
    r"phone|mobile|msisdn|caller|callee|number|cell|\btel|^(from|to|ani|dnis|forwarded_from)$",
    re.IGNORECASE,
)
_SECRET_KEY = re.compile(
    r"token|secret|password|passwd|api_?key|auth|credential|signature", re.IGNORECASE
)
#: +966 50 123 4567, 00966501234567, +1 (555) 010-9999: the whole value.
_INTERNATIONAL = re.compile(r"^\s*(\+|00)[\d\s().-]{7,22}$")
#: 0501234567, 050 123 4567, (011) 456-7890: a trunk zero, then 8-11 more digits.
_NATIONAL = re.compile(r"^\s*\(?0\d{1,4}\)?([\s.-]?\d{2,4}){2,4}\s*$")
#: An international number inside a text ("call +966501234567 after 5").
_EMBEDDED = re.compile(r"(?<![\w+])(\+|00)\d[\d\s().-]{6,20}\d")
_MIN_DIGITS, _MAX_DIGITS = 8, 15


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


def _digit_count(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


def looks_like_phone_number(value: object) -> bool:
    """Whether ``value`` is (or, for a text, contains) a phone number."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return len(str(abs(value))) >= 11
    if not isinstance(value, str) or len(value) > 2000:
        # Long texts are not contact fields; nothing the service stores holds them.
        return isinstance(value, str) and bool(_EMBEDDED.search(value[:2000]))
    if _INTERNATIONAL.match(value) or _NATIONAL.match(value):
        return _MIN_DIGITS <= _digit_count(value) <= _MAX_DIGITS
    return any(
        _MIN_DIGITS <= _digit_count(m.group(0)) <= _MAX_DIGITS for m in _EMBEDDED.finditer(value)
    )


def strip_contact_data(value: Any) -> Any:
    """A copy of ``value`` without contact keys or phone-like values, at any depth."""
    if isinstance(value, Mapping):
        return {
            str(key): strip_contact_data(item)
            for key, item in value.items()
            if not (isinstance(key, str) and is_contact_key(key))
            and not looks_like_phone_number(item)
        }
    if isinstance(value, list | tuple):
        return [strip_contact_data(item) for item in value if not looks_like_phone_number(item)]
    return value
