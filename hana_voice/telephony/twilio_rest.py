"""Twilio's REST API for the two things a media stream cannot do: hang up and transfer.

Both update the live call: ``POST {TWILIO_API_URL}/2010-04-01/Accounts/{sid}/Calls/{CallSid}.json``
with HTTP basic auth (account SID, auth token) and a form body:

- hang-up: ``Status=completed`` ends the call;
- transfer: ``Twiml=<Response><Dial>...</Dial></Response>`` replaces the call's TwiML, which
  ends the ``<Connect><Stream>`` (Twilio sends ``stop`` and closes the socket) and dials
  ``TWILIO_TRANSFER_TO`` (a number, or a ``<Sip>`` URI).

A 5xx, a timeout or a network error is retried a few times with a short backoff (the caller is
waiting on the line); a 4xx (wrong credentials, unknown call) is final. Every request ends in
one ``hana_provider_requests`` count (ok / failed / not_configured) and one log line with the
call's id and the status, never the number dialled or the credentials. Failures raise
:class:`~hana_voice.errors.ProviderError`; httpx's own errors do not leave this module.

Cancellation: cancelling a request abandons it; Twilio may or may not have applied it. The
call session shields these requests (bounded) so a provider's ``stop`` cannot cut them short.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Final
from xml.sax.saxutils import escape

import httpx
import trio

from hana_voice.errors import ProviderError
from hana_voice.logs import log_event
from hana_voice.metrics import Metrics
from hana_voice.settings import Settings

__all__ = ["ATTEMPTS", "TwilioRest", "transfer_twiml"]

log = logging.getLogger(__name__)

PROVIDER: Final = "twilio"
#: Attempts per request; the backoff before attempt n+1 is BACKOFF * 2**(n-1) seconds.
ATTEMPTS: Final = 3
BACKOFF: Final = 0.25
_API_VERSION: Final = "2010-04-01"
#: A call SID as it may appear in a URL path (Twilio's are CA + 32 hex digits).
_CALL_SID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


def transfer_twiml(to: str) -> str:
    """TwiML that dials ``to``: a phone number, or a SIP URI in a ``<Sip>`` noun."""
    target = escape(to)
    if to.startswith(("sip:", "sips:")):
        target = f"<Sip>{target}</Sip>"
    return f"<Response><Dial>{target}</Dial></Response>"


class TwilioRest:
    """Updates live Twilio calls. One per process; ``aclose`` at shutdown."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.timeout = settings.twilio_api_timeout
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(self.timeout),
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    @property
    def configured(self) -> bool:
        """Whether calls can be updated at all (account SID and auth token set)."""
        return bool(self.settings.twilio_account_sid and self.settings.twilio_auth_token)

    @property
    def can_transfer(self) -> bool:
        return self.configured and bool(self.settings.twilio_transfer_to)

    async def hang_up(self, call_sid: str | None) -> None:
        """End the call (``Status=completed``); ProviderError if it could not be done."""
        await self._update("hangup", call_sid, {"Status": "completed"})

    async def transfer(self, call_sid: str | None) -> None:
        """Dial TWILIO_TRANSFER_TO in place of the stream; ProviderError if it could not."""
        to = self.settings.twilio_transfer_to
        if not to:
            self._count("transfer", "not_configured")
            raise ProviderError("TWILIO_TRANSFER_TO is not set: no one to transfer to")
        await self._update("transfer", call_sid, {"Twiml": transfer_twiml(to)})

    # ------------------------------------------------------------------ internals

    def _count(self, action: str, result: str) -> None:
        self.metrics.provider_requests.labels(PROVIDER, action, result).inc()

    def _url(self, call_sid: str) -> str:
        base = self.settings.twilio_api_url
        sid = self.settings.twilio_account_sid
        return f"{base}/{_API_VERSION}/Accounts/{sid}/Calls/{call_sid}.json"

    async def _update(self, action: str, call_sid: str | None, form: Mapping[str, str]) -> None:
        settings = self.settings
        if not self.configured:
            self._count(action, "not_configured")
            raise ProviderError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set")
        if not call_sid or not _CALL_SID.fullmatch(call_sid):
            self._count(action, "failed")
            raise ProviderError("the stream's start message carried no usable callSid")
        assert settings.twilio_account_sid is not None and settings.twilio_auth_token is not None
        auth = (settings.twilio_account_sid, settings.twilio_auth_token)
        url = self._url(call_sid)
        problem, last_status = "", None
        for attempt in range(1, ATTEMPTS + 1):
            if attempt > 1:
                self.metrics.provider_retries.labels(PROVIDER, action).inc()
                await trio.sleep(BACKOFF * 2 ** (attempt - 2))
            status: int | None = None
            # httpx's timeout covers each phase; the trio deadline bounds the whole attempt.
            with trio.move_on_after(self.timeout * 2) as scope:
                try:
                    response = await self._client.post(url, data=dict(form), auth=auth)
                    status = response.status_code
                except httpx.TimeoutException:
                    problem = "timeout"
                except httpx.HTTPError as exc:
                    problem = f"network error ({type(exc).__name__})"
            if scope.cancelled_caught:
                problem = "timeout"
            if status is not None and 200 <= status < 300:
                self._count(action, "ok")
                log_event(
                    log,
                    logging.INFO,
                    "twilio.call_updated",
                    action=action,
                    call_sid=call_sid,
                    status=status,
                    attempts=attempt,
                )
                return
            last_status = status
            if status is not None:
                problem = f"HTTP {status}"
                if 400 <= status < 500 and status != 429:
                    break  # the request itself is wrong (credentials, call id): final
        self._count(action, "failed")
        log_event(
            log,
            logging.ERROR,
            "twilio.call_update_failed",
            action=action,
            call_sid=call_sid,
            problem=problem,
            attempts=attempt,
        )
        raise ProviderError(f"Twilio {action} failed: {problem}", status=last_status)
