"""What the outbox sends for each kind of delivery: URL, body and headers. Pure, no I/O.

A finished call queues one outbox row per kind it asks for (``ResultStore.finish_call(...,
deliveries=...)``). The outbox worker (outbox.py) looks the row's kind up in
:data:`DELIVERIES` and builds the request from the stored call (the dict ``get_call``
returns) and the row's idempotency key:

* ``results``: the questionnaire hand-over, ``POST {NEXTJS_API_URL}/api/responses/submit``
  with a ``voice_service`` JWT (handover.py builds the body). Skipped and unanswered
  questions are left out of ``answers``: the front end rejects an empty response.
* ``call_status``: the billing post, ``POST {NEXTJS_API_URL}/api/telephony/call-status``
  ``{call_session_id, status, duration}``, no authentication (billing.py builds the body and
  maps the call's outcome to ``status``; ../shared/frontend-contract.md section 3).

A kind's ``body`` raises :class:`~hana_voice.errors.Undeliverable` (a ValueError) for a call
the front end would refuse whatever the retries (the pre-checks): the worker fails the row at
once with that reason, without sending it. KeyError, TypeError, AttributeError or another
ValueError mean a row it cannot send (another version wrote it): failed the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from hana_voice.results.billing import CALL_STATUS_PATH, checked_call_status_body
from hana_voice.results.handover import make_token, request_headers, submit_body, submit_url
from hana_voice.settings import Settings

# Re-exported: where the billing route's path was defined before billing.py.
__all__ = [
    "CALL_STATUS_PATH",
    "DELIVERIES",
    "UNSENT_ANSWER_STATUSES",
    "CallStatusDelivery",
    "Delivery",
    "ResultsDelivery",
]

#: Answer statuses never sent in the hand-over's ``answers``.
UNSENT_ANSWER_STATUSES = frozenset({"skipped", "unanswered"})


class Delivery(Protocol):
    """How one kind of outbox row becomes an HTTP request."""

    @property
    def kind(self) -> str: ...

    def url(self, settings: Settings) -> str | None:
        """Where to POST; None while the settings it needs are missing."""

    def body(self, call: Mapping[str, Any], key: str) -> dict[str, Any]:
        """The JSON body for the stored ``call``, with idempotency key ``key``."""

    def headers(self, settings: Settings, key: str, now: float) -> dict[str, str]:
        """The request headers at time ``now`` (epoch seconds)."""


class ResultsDelivery:
    """The questionnaire hand-over to the front end's submit route."""

    kind = "results"

    def url(self, settings: Settings) -> str | None:
        base = settings.nextjs_api_url
        return None if base is None or settings.jwt_secret is None else submit_url(base)

    def body(self, call: Mapping[str, Any], key: str) -> dict[str, Any]:
        sent = [a for a in call["answers"] if a.get("status") not in UNSENT_ANSWER_STATUSES]
        return submit_body({**call, "answers": sent}, key)

    def headers(self, settings: Settings, key: str, now: float) -> dict[str, str]:
        secret = settings.jwt_secret
        if secret is None:
            raise ValueError("JWT_SECRET is not set")
        return request_headers(make_token(secret, settings.jwt_expiry_minutes, now), key)


class CallStatusDelivery:
    """The billing post: the front end charges one token per completed or answered call."""

    kind = "call_status"

    def url(self, settings: Settings) -> str | None:
        base = settings.nextjs_api_url
        return None if base is None else base.rstrip("/") + CALL_STATUS_PATH

    def body(self, call: Mapping[str, Any], key: str) -> dict[str, Any]:
        return checked_call_status_body(call)

    def headers(self, settings: Settings, key: str, now: float) -> dict[str, str]:
        return {"Content-Type": "application/json", "Idempotency-Key": key}


#: Every delivery kind the outbox knows, by kind.
DELIVERIES: dict[str, Delivery] = {
    delivery.kind: delivery for delivery in (ResultsDelivery(), CallStatusDelivery())
}
