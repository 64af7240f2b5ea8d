"""What the Hana front end's results route receives, and what it would refuse. No I/O.

The outbox worker calls these functions and does the HTTP. The body is the one the front
end's ``POST /api/responses/submit`` validates (../shared/frontend-contract.md section 2)::

    {"template_id": "<template uuid>", "question_count": 3,
     "answers": [{"question_id", "question_order", "response", "confidence",
                  "response_time_seconds"}, ...],          # answered questions only, by order
     "metadata": {"session_id": "<uuid>", "patient_id", "hospital_id", "campaign_id",
                  "call_duration_seconds": <int>, "outcome", "outcome_detail",
                  "call_context", "idempotency_key"}}

* ``response`` is in the template's own words: the call session records
  :func:`response_for` (a front-end template's ``expected_responses`` word for yes/no and
  multiple choice, digit strings for ratings and numbers, the transcript for open text).
* Unanswered and skipped questions are left out: the route refuses an empty ``response``.
* ``call_duration_seconds`` is whole seconds (:func:`whole_seconds`): the route stores it in
  an integer column, where a fraction fails.

:func:`refusal` names what the route would refuse in a body (ids that are not uuids, no
hospital or patient, an empty template) so that the worker marks the record failed at once
instead of sending it. :func:`reply_error` keeps the front end's own error text.

Phone numbers are patient data the front end already has (it placed the call), so they are
removed from the metadata before it is stored, and therefore before it is sent: see
:func:`strip_phone_numbers`.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import jwt

from hana_voice import SERVICE_NAME
from hana_voice.errors import Undeliverable
from hana_voice.privacy import strip_contact_data
from hana_voice.questionnaire.template import AnswerValue, Question

SUBMIT_PATH = "/api/responses/submit"
JWT_ROLE = "voice_service"
JWT_ALGORITHM = "HS256"

#: Keys dropped wherever they appear in call metadata (at any depth).
PHONE_KEYS = frozenset({"caller_number", "callee_number", "caller", "callee"})

#: The front end's ids, copied from the call's metadata into the body's metadata.
SENT_METADATA_KEYS = ("patient_id", "hospital_id", "campaign_id")

#: Answer statuses never handed over (the route refuses an answer without a response).
NOT_SENT_STATUSES = frozenset({"unanswered", "skipped"})

#: Longest error text kept from a reply (the store keeps at most 500 characters).
MAX_ERROR_CHARS = 300


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


def request_headers(token: str | None, key: str) -> dict[str, str]:
    headers = {"Idempotency-Key": key, "Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


# --------------------------------------------------------------------------- values


def response_for(question: Question | None, value: AnswerValue | None) -> str:
    """An answer value as the template words it: what is stored and handed over.

    ``question.replies`` maps a value ("yes", an option id) to the template's word ("نعم",
    the option's text); without an entry the value itself is used, so ratings and numbers
    become digit strings and open text stays the transcript. None: "" (unanswered).
    """
    if value is None:
        return ""
    return str(value) if question is None else question.reply(value)


def whole_seconds(seconds: object) -> int:
    """A duration as whole seconds, rounded up (a started second counts, as telephony bills);
    missing, negative or not a number: 0."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return 0
    if not math.isfinite(seconds) or seconds <= 0:
        return 0
    return math.ceil(seconds - 1e-9)


def as_uuid(value: object) -> str | None:
    """``value`` in the canonical uuid form (lower case, hyphens), or None if it is not one."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        return None


def _confidence(value: object) -> float:
    # The route needs a number; NaN and infinities are not JSON.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0.0
    return float(value)


def sent_answers(answers: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The answers handed over: answered ones with a response, sorted by question order."""
    chosen = [
        answer
        for answer in answers
        if answer.get("status") not in NOT_SENT_STATUSES
        and isinstance(answer.get("response"), str)
        and answer["response"].strip()
    ]
    chosen.sort(key=lambda a: (a["question_order"], str(a["question_id"])))
    return [
        {
            "question_id": answer["question_id"],
            "question_order": answer["question_order"],
            "response": answer["response"],
            "confidence": _confidence(answer.get("confidence")),
            "response_time_seconds": answer.get("response_time_seconds"),
        }
        for answer in chosen
    ]


def _id(value: object) -> object:
    # A uuid goes out in canonical form; anything else as it was given (refusal() names it).
    canonical = as_uuid(value)
    return canonical if canonical is not None else value


def build_payload(call: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The submit body for a stored call (the dict ``ResultStore.get_call`` returns)."""
    metadata: Mapping[str, Any] = call["metadata"]
    context = metadata.get("call_context")
    outcome = call.get("outcome") or call.get("status")
    return {
        "template_id": _id(call["template_id"]),
        "question_count": call["question_count"],
        "answers": sent_answers(call["answers"]),
        "metadata": {
            "session_id": _id(call["session_id"]),
            **{name: _id(metadata.get(name)) for name in SENT_METADATA_KEYS},
            "call_duration_seconds": whole_seconds(call.get("call_duration_seconds")),
            "outcome": outcome,
            "outcome_detail": call.get("outcome_detail"),
            # Stored metadata is already stripped; stripping again guards rows written by
            # an older version that kept them.
            "call_context": strip_phone_numbers(context) if context is not None else {},
            "idempotency_key": key,
        },
    }


# --------------------------------------------------------------------------- pre-checks


def submit_body(call: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The submit body for a stored call; raise Undeliverable if the route would refuse it."""
    body = build_payload(call, key)
    reason = refusal(body)
    if reason is not None:
        raise Undeliverable(reason)
    return body


def refusal(body: Mapping[str, Any]) -> str | None:
    """Why the front end's route would refuse ``body`` for good, or None.

    Checked before sending, in the route's order, so that a result the route can never take
    is marked failed at once with this reason instead of being sent (and retried after a
    500). The reasons name fields, never their values (ids of patients are not logged).
    """
    count = body.get("question_count")
    if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
        return "question_count is not a positive number: the route refuses an empty template"
    metadata = body.get("metadata")
    if not isinstance(metadata, Mapping):
        return "metadata is missing"
    problem = _id_problem(metadata, "hospital_id", required=True)
    if problem is not None:
        return problem
    template_id = body.get("template_id")
    if as_uuid(template_id) is None:
        return (
            f"template_id {str(template_id)[:64]!r} is not a front-end template id (a uuid):"
            " the route refuses it (Template not found or not published)"
        )
    for name, required in (("patient_id", True), ("campaign_id", False)):
        problem = _id_problem(metadata, name, required=required)
        if problem is not None:
            return problem
    if as_uuid(metadata.get("session_id")) is None:
        return "session_id is not a uuid: the front end stores it in a uuid column"
    duration = metadata.get("call_duration_seconds")
    if isinstance(duration, bool) or not isinstance(duration, int):
        return "call_duration_seconds is not whole seconds: the route stores an integer"
    answers = body.get("answers")
    if not isinstance(answers, list):
        return "answers is not a list"
    orders = [answer.get("question_order") for answer in answers]
    if any(not isinstance(order, int | float) for order in orders) or orders != sorted(orders):
        return "answers are not sorted by question_order"
    if any(not str(answer.get("response") or "").strip() for answer in answers):
        return "an answer has an empty response"
    return None


def _id_problem(metadata: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = metadata.get(name)
    if value is None or value == "":
        return f"no {name} in the call's context: the front end requires one" if required else None
    if as_uuid(value) is None:
        return f"{name} in the call's context is not a uuid: the front end refuses it"
    return None


# --------------------------------------------------------------------------- replies

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _text_of(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, Mapping):
        for key in ("message", "error", "details"):
            inner = _text_of(value.get(key))
            if inner is not None:
                return inner
    return None


def reply_error(status: int, content: bytes, content_type: str | None = None) -> str:
    """``HTTP <status>`` with the front end's own error text from the reply body, if any.

    The front end answers errors as JSON (``{"error": "Invalid hospital_id provided"}``);
    the text names fields, not patients, so it is stored, logged and shown by GET /calls.
    HTML pages (a proxy's or Next.js's 404) are not kept.
    """
    prefix = f"HTTP {status}"
    text: str | None = None
    raw = content[:4096].decode("utf-8", "replace").strip()
    if raw and "json" in (content_type or "application/json").lower():
        try:
            text = _text_of(json.loads(raw))
        except ValueError:
            text = None
    if text is None and raw and not raw.startswith("<") and not raw.startswith("{"):
        text = raw
    if text is None:
        return prefix
    text = " ".join(_CONTROL.sub(" ", text).split())
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 1] + "…"
    return f"{prefix}: {text}"
