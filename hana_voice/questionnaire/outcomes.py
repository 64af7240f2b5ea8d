"""The outcome of a call: exactly one per call, from a documented set (docs/questionnaires.md).

- ``completed`` (status completed): the questionnaire was walked to its closing.
- ``partial`` (incomplete): the call ended early after the caller was heard (hang-up, drop,
  identity or consent never made clear).
- ``consent_refused`` (consent_refused): no, or "I don't want", to the consent question.
- ``stopped`` (stopped): the caller asked to stop during the questions.
- ``do_not_call`` (stopped): the caller asked never to be called again.
- ``callback_requested`` (incomplete): busy, "call me later", or the patient is not there;
  the time asked for, resolved, is the detail's ``callback_at`` (None when none was said).
- ``wrong_person`` (incomplete): the identity check was answered no.
- ``escalated`` (escalated): handed to a person (critical answer, request, failures).
- ``transfer_failed`` (escalated): a promised transfer could not be made; set by the
  telephony side with ``Call.set_outcome``.
- ``no_response`` (incomplete): nothing was heard from the caller at all.
- ``failed`` (error): a technical failure ended the call.

``status`` is the results store's older, coarser call status, kept for the hand-over's
``status`` field and existing readers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

Outcome = Literal[
    "completed", "partial", "consent_refused", "stopped", "do_not_call", "callback_requested",
    "wrong_person", "escalated", "transfer_failed", "no_response", "failed",
]  # fmt: skip
OUTCOMES: tuple[Outcome, ...] = (
    "completed", "partial", "consent_refused", "stopped", "do_not_call", "callback_requested",
    "wrong_person", "escalated", "transfer_failed", "no_response", "failed",
)  # fmt: skip
#: The store's call status for each outcome.
STATUS: Mapping[str, str] = {
    "completed": "completed",
    "partial": "incomplete",
    "consent_refused": "consent_refused",
    "stopped": "stopped",
    "do_not_call": "stopped",
    "callback_requested": "incomplete",
    "wrong_person": "incomplete",
    "escalated": "escalated",
    "transfer_failed": "escalated",
    "no_response": "incomplete",
    "failed": "error",
}


def status_of(outcome: str) -> str:
    """The store status for ``outcome``; ValueError for a name outside :data:`OUTCOMES`."""
    status = STATUS.get(outcome)
    if status is None:
        raise ValueError(f"unknown call outcome {outcome!r}; one of {', '.join(OUTCOMES)}")
    return status
