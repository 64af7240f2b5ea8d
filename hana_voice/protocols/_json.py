"""Reading and writing the JSON text frames of the browser, Maqsam and Twilio protocols.

The field readers name the offending field (``start.sample_rate``) and say what was expected
and what came, so an integrator can fix a client from the error message alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hana_voice.errors import ProtocolError

__all__ = [
    "DTMF_DIGITS",
    "bad_message",
    "dumps",
    "get_digit",
    "get_int",
    "get_object",
    "get_str",
    "parse_object",
    "type_name",
]

DTMF_DIGITS = frozenset("0123456789*#")


def bad_message(message: str, code: str = "bad_message", *, fatal: bool = False) -> ProtocolError:
    return ProtocolError(message, code=code, close_code=1008, fatal=fatal)


def type_name(value: object) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def parse_object(frame: str) -> dict[str, Any]:
    """The JSON object in a text frame."""
    try:
        value = json.loads(frame)
    except json.JSONDecodeError as exc:
        raise bad_message(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", "invalid_json"
        ) from None
    except RecursionError:
        raise bad_message("invalid JSON: nested too deeply", "invalid_json") from None
    except ValueError:
        # int() refuses numbers of more than 4300 digits (CVE-2020-10735's limit) with a plain
        # ValueError; like any other bad JSON it must cost the frame, never the call.
        raise bad_message("invalid JSON: a number is too long", "invalid_json") from None
    if not isinstance(value, dict):
        raise bad_message(f"message must be a JSON object, got {type_name(value)}")
    return value


def dumps(message: Mapping[str, Any]) -> str:
    # Arabic stays readable in traces, and compact separators keep audio frames small.
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def get_str(
    obj: Mapping[str, Any], key: str, where: str, *, required: bool = True, max_len: int = 0
) -> str | None:
    """A string field; ``None`` when absent (or null) and not required."""
    value = obj.get(key)
    if value is None:
        if required:
            raise bad_message(f"{where}.{key} is required")
        return None
    if not isinstance(value, str):
        raise bad_message(f"{where}.{key} must be a string, got {type_name(value)}")
    if max_len and len(value) > max_len:
        raise bad_message(
            f"{where}.{key} is {len(value)} characters; the limit is {max_len}", "text_too_long"
        )
    return value


def get_int(obj: Mapping[str, Any], key: str, where: str, default: int) -> int:
    value = obj.get(key)
    if value is None:
        return default
    # bool is an int to Python but not a number to a JSON client.
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_message(f"{where}.{key} must be a whole number, got {type_name(value)}")
    return value


def get_object(
    obj: Mapping[str, Any], key: str, where: str, *, required: bool = False
) -> dict[str, Any]:
    """An object field; ``{}`` when absent (or null) and not required."""
    value = obj.get(key)
    if value is None:
        if required:
            raise bad_message(f"{where}.{key} is required")
        return {}
    if not isinstance(value, dict):
        raise bad_message(f"{where}.{key} must be an object, got {type_name(value)}")
    return value


def get_digit(obj: Mapping[str, Any], key: str, where: str) -> str:
    """One keypad digit: a single character of 0-9, * or #."""
    value = obj.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9:
        return str(value)  # some providers send the digit as a number
    if not isinstance(value, str) or value not in DTMF_DIGITS:
        # Digits a caller keys can be patient data: describe the value, never echo it.
        shown = f"{len(value)} characters" if isinstance(value, str) else type_name(value)
        raise bad_message(
            f"{where}.{key} must be one character of 0-9, * or #, got {shown}", "bad_dtmf"
        )
    return value
