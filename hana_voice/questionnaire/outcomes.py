"""The outcome of a call: exactly one per call, from a documented set (docs/questionnaires.md).

=====================  ============================================================  =========
outcome                reached when                                                  status
=====================  ============================================================  =========
completed              the questionnaire was walked to its closing                   completed
partial                the call ended early after the caller was heard (hang-up,     incomplete
                       drop, identity or consent never made clear)
consent_refused        the caller said no (or "I don't want") to the consent          consent_refused
                       question
stopped                the caller asked to stop during the questions                 stopped
do_not_call            the caller asked never to be called again                     stopped
callback_requested     busy / "call me later" / the patient is not here; the time    incomplete
                       asked for, resolved, is in the detail (``callback_at``)
wrong_person           the identity check was answered no                            incomplete
escalated              handed to a person (critical answer, request, failures)       escalated
transfer_failed        a promised transfer to a person could not be made (set by     escalated
                       the telephony side, see ``Call.set_outcome``)
no_response            nothing was heard from the caller at all                      incomplete
failed                 a technical failure ended the call                            error
=====================  ============================================================  =========

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
