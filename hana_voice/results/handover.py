"""What the Hana front end receives at the end of a call: the JWT and the JSON body.

Pure functions, no I/O: the outbox worker (outbox.py) calls them and does the HTTP.

The body is the shape the front end's ``POST /api/responses/submit`` route validates::

    {"template_id": "...", "question_count": 3,
     "answers": [{"question_id", "question_order", "response", "confidence",
                  "response_time_seconds"}, ...],
     "metadata": {"session_id", "patient_id", "hospital_id", "campaign_id",
                  "call_duration_seconds", "call_context", "idempotency_key"}}

Phone numbers are patient data the front end already has (it placed the call), so they are
removed from the metadata before it is stored, and therefore before it is sent: see
:func:`strip_phone_numbers`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt

from hana_voice import SERVICE_NAME
from hana_voice.privacy import strip_contact_data

SUBMIT_PATH = "/api/responses/submit"
JWT_ROLE = "voice_service"
JWT_ALGORITHM = "HS256"

#: Keys dropped wherever they appear in call metadata (at any depth).
PHONE_KEYS = frozenset({"caller_number", "callee_number", "caller", "callee"})

#: Metadata keys copied into the hand-over body (besides session_id and the duration).
SENT_METADATA_KEYS = ("patient_id", "hospital_id", "campaign_id")


def strip_phone_numbers(value: Any) -> Any:
    """A copy of ``value`` without :data:`PHONE_KEYS`, contact keys or phone-like values at any
    depth (one rule for the codecs and the store: :mod:`hana_voice.privacy`)."""
    return strip_contact_data(value)


def idempotency_key(session_id: str) -> str:
    """The key that lets the front end recognise a second delivery of the same call."""
    return f"{SERVICE_NAME}:{session_id}"


def make_token(secret: str, expiry_minutes: int, now: float) -> str:
    """An HS256 JWT with role ``voice_service``, valid for ``expiry_minutes`` from ``now``."""
    issued = int(now)
    claims = {
        "sub": SERVICE_NAME,
        "role": JWT_ROLE,
        "iat": issued,
        "exp": issued + expiry_minutes * 60,
    }
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM)


def submit_url(base_url: str) -> str:
    return base_url.rstrip("/") + SUBMIT_PATH


def build_payload(call: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The submit body for a stored call (the dict ``ResultDatabase.get_call`` returns)."""
    metadata: Mapping[str, Any] = call["metadata"]
    context = metadata.get("call_context")
    return {
        "template_id": call["template_id"],
        "question_count": call["question_count"],
        "answers": [
            {
                "question_id": answer["question_id"],
                "question_order": answer["question_order"],
                "response": answer["response"],
                "confidence": answer["confidence"],
                "response_time_seconds": answer["response_time_seconds"],
            }
            for answer in call["answers"]
        ],
        "metadata": {
            "session_id": call["session_id"],
            **{name: metadata.get(name) for name in SENT_METADATA_KEYS},
            "call_duration_seconds": call["call_duration_seconds"],
            # Stored metadata is already stripped; stripping again guards rows written by
            # an older version that kept them.
            "call_context": strip_phone_numbers(context) if context is not None else {},
            "idempotency_key": key,
        },
    }


def request_headers(token: str, key: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "Idempotency-Key": key,
        "Content-Type": "application/json",
    }
