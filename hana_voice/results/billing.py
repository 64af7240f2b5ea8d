"""The billing post: how a call ended, told to the front end's call-status route. No I/O.

After each call whose context names the front end's ``call_session_id`` the outbox posts
``{NEXTJS_API_URL}/api/telephony/call-status`` (../shared/frontend-contract.md section 3)::

    {"call_session_id": "<uuid>", "status": "completed", "duration": 84}

The front end charges the hospital one token when ``status`` is ``completed``, or
``answered`` with ``duration`` > 0; anything else is "not billable". The status comes from
the call's outcome (issue 14's names; before outcomes existed, the call's status):

============================================================  ============
outcome                                                       status
============================================================  ============
completed                                                     completed
partial, consent_refused, stopped, do_not_call,               answered
callback_requested, wrong_person, escalated, transfer_failed,
incomplete (the caller dropped), and any other outcome
no_response (nothing heard at all)                            no-answer
failed, error (technical)                                     failed
============================================================  ============

So a call a person answered is billable whatever they said (the line was used), a call
nobody answered or that failed for technical reasons is not. ``duration`` is the call's
duration in whole seconds, rounded up (handover.whole_seconds).

The post travels through the same durable outbox as the results (kind ``call_status``), so
it survives restarts and is retried like them; BILLING_STATUS_ENABLED=false turns it off.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hana_voice.errors import Undeliverable
from hana_voice.results.handover import as_uuid, whole_seconds

CALL_STATUS_PATH = "/api/telephony/call-status"
CALL_STATUS_KIND = "call_status"
RESULTS_KIND = "results"

#: Outcome (or, for rows from before outcomes, call status) -> the front end's status.
BILLING_STATUS: Mapping[str, str] = {
    "completed": "completed",
    "partial": "answered",
    "consent_refused": "answered",
    "stopped": "answered",
    "do_not_call": "answered",
    "callback_requested": "answered",
    "wrong_person": "answered",
    "escalated": "answered",
    "transfer_failed": "answered",
    "incomplete": "answered",
    "no_response": "no-answer",
    "failed": "failed",
    "error": "failed",
}
#: For an outcome added later and not in the table: someone was on the line.
DEFAULT_BILLING_STATUS = "answered"

#: Where a call's context may carry the front end's call session id (top level first).
_NESTED = ("custom", "custom_parameters", "customParameters", "metadata")


def call_status_url(base_url: str) -> str:
    return base_url.rstrip("/") + CALL_STATUS_PATH


def billing_status(outcome: str | None) -> str:
    """The front end's ``status`` for a call that ended with ``outcome``."""
    if outcome is None:
        return DEFAULT_BILLING_STATUS
    return BILLING_STATUS.get(outcome, DEFAULT_BILLING_STATUS)


def call_session_id(metadata: Mapping[str, Any]) -> str | None:
    """The front end's call session id from a call's stored metadata, as given, or None."""
    context = metadata.get("call_context")
    scopes: list[Mapping[str, Any]] = [metadata]
    if isinstance(context, Mapping):
        scopes.append(context)
        scopes += [v for k in _NESTED if isinstance(v := context.get(k), Mapping)]
    for scope in scopes:
        value = scope.get("call_session_id")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def deliveries_for(metadata: Mapping[str, Any], billing_enabled: bool) -> tuple[str, ...]:
    """The outbox kinds to queue for a finished call: results, and billing when it applies."""
    if billing_enabled and call_session_id(metadata) is not None:
        return (RESULTS_KIND, CALL_STATUS_KIND)
    return (RESULTS_KIND,)


def call_status_body(call: Mapping[str, Any]) -> dict[str, Any]:
    """The call-status body for a stored call (the dict ``ResultStore.get_call`` returns)."""
    session = call_session_id(call["metadata"])
    canonical = as_uuid(session)
    return {
        "call_session_id": canonical if canonical is not None else session,
        "status": billing_status(call.get("outcome") or call["status"]),
        "duration": whole_seconds(call.get("call_duration_seconds")),
    }


def call_status_refusal(body: Mapping[str, Any]) -> str | None:
    """Why the call-status route would refuse ``body`` for good, or None."""
    if body.get("call_session_id") is None:
        return "no call_session_id in the call's context"
    if as_uuid(body.get("call_session_id")) is None:
        return "call_session_id in the call's context is not a uuid: no such session there"
    return None


def checked_call_status_body(call: Mapping[str, Any]) -> dict[str, Any]:
    """The call-status body; raise Undeliverable if the route would refuse it for good."""
    body = call_status_body(call)
    reason = call_status_refusal(body)
    if reason is not None:
        raise Undeliverable(reason)
    return body
