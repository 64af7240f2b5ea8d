"""What the outbox sends for each kind of delivery: URL, body and headers. Pure, no I/O.

A finished call queues one outbox row per kind it asks for (``ResultStore.finish_call(...,
deliveries=...)``). The outbox worker (outbox.py) looks the row's kind up in
:data:`DELIVERIES` and builds the request from the stored call (the dict ``get_call``
returns) and the row's idempotency key:

* ``results``: the questionnaire hand-over, ``POST {NEXTJS_API_URL}/api/responses/submit``
  with a ``voice_service`` JWT (handover.py builds the body). Skipped and unanswered
  questions are left out of ``answers``: the front end rejects an empty response.
* ``call_status``: the billing post, ``POST {NEXTJS_API_URL}/api/telephony/call-status``
  ``{call_session_id, status, duration}``, no authentication
  (../shared/frontend-contract.md section 3).

A kind's ``body`` may raise KeyError, TypeError, AttributeError or ValueError for a row it
cannot send (another version wrote it): the worker fails that row with the reason and goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from hana_voice.results.handover import build_payload, make_token, request_headers, submit_url
from hana_voice.settings import Settings

CALL_STATUS_PATH = "/api/telephony/call-status"

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
        return build_payload({**call, "answers": sent}, key)

    def headers(self, settings: Settings, key: str, now: float) -> dict[str, str]:
        secret = settings.jwt_secret
        if secret is None:
            raise ValueError("JWT_SECRET is not set")
        return request_headers(make_token(secret, settings.jwt_expiry_minutes, now), key)


class CallStatusDelivery:
    """The billing post: the front end charges one token per completed call."""

    kind = "call_status"

    def url(self, settings: Settings) -> str | None:
        base = settings.nextjs_api_url
        return None if base is None else base.rstrip("/") + CALL_STATUS_PATH

    def body(self, call: Mapping[str, Any], key: str) -> dict[str, Any]:
        metadata: Mapping[str, Any] = call["metadata"]
        context = metadata.get("call_context") or {}
        session = metadata.get("call_session_id") or context.get("call_session_id")
        duration = call["call_duration_seconds"]
        return {
            "call_session_id": session,
            "status": call["status"],
            "duration": 0 if duration is None else round(float(duration)),
        }

    def headers(self, settings: Settings, key: str, now: float) -> dict[str, str]:
        return {"Content-Type": "application/json", "Idempotency-Key": key}


#: Every delivery kind the outbox knows, by kind.
DELIVERIES: dict[str, Delivery] = {
    delivery.kind: delivery for delivery in (ResultsDelivery(), CallStatusDelivery())
}
