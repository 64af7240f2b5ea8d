"""How a call is hung up and handed to a person, per provider; used by the questionnaire driver.

- Maqsam (and any peer whose protocol has the messages): ``call.hangup`` / ``call.redirect``
  through the codec. After ``call.redirect`` Maqsam takes the call over and closes our socket;
  we wait for that (at most MAQSAM_REDIRECT_WAIT) instead of closing first, so Maqsam sees a
  transfer, not a finished conversation.
- Twilio media streams have no such messages: the call is updated through the REST API
  (:mod:`hana_voice.telephony.twilio_rest`). A transfer that cannot be made (not configured,
  or the API failed) returns False and the dialog promises a call-back instead; a hang-up that
  fails still closes the socket, which ends the ``<Stream>``.
- Browsers: a hang-up is the end of the session; they are never transferred.

A call that ends for another reason (idle timeout, maximum length, an error, shutdown) is
*released*: on Twilio it is hung up through the REST API too, unless the caller (``stop``) or
the dialog already ended it, so Twilio does not run on past the closed ``<Stream>``.

Every method may be called from a shielded scope; each is bounded.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

import trio

from hana_voice.errors import ProviderError
from hana_voice.events import HangUp, Redirect
from hana_voice.logs import log_event

if TYPE_CHECKING:
    from hana_voice.calls.call import Call
    from hana_voice.protocols.twilio import TwilioCodec
    from hana_voice.telephony.twilio_rest import TwilioRest

__all__ = ["CallControl", "FrameControl", "TwilioControl", "control_bound"]

log = logging.getLogger(__name__)


class CallControl(Protocol):
    async def hang_up(self, call: Call, reason: str) -> None:
        """End the call at the provider (the session closes the socket afterwards)."""
        ...

    async def transfer(self, call: Call, reason: str) -> bool:
        """Hand the caller to a person; False when that could not be done."""
        ...

    async def after_transfer(self, call: Call) -> None:
        """Wait, bounded, for what follows a transfer (the provider closing the socket)."""
        ...

    async def release(self, call: Call) -> None:
        """The call is over for another reason (idle, too long, an error, shutdown): make sure
        the provider ends it too, unless the dialog or the caller already did."""
        ...


def control_bound(call: Call) -> float:
    """An upper bound on one hang-up or transfer, for the shielded scope around it."""
    settings = call.services.settings
    from hana_voice.telephony.twilio_rest import ATTEMPTS, BACKOFF

    return ATTEMPTS * (2 * settings.twilio_api_timeout + BACKOFF * 2**ATTEMPTS) + 1.0


class FrameControl:
    """Hang-up and transfer as protocol messages (Maqsam); ``redirect_wait`` after a transfer."""

    def __init__(self, redirect_wait: float = 0.0) -> None:
        self.redirect_wait = redirect_wait

    async def hang_up(self, call: Call, reason: str) -> None:
        await call.emit(HangUp(reason))

    async def transfer(self, call: Call, reason: str) -> bool:
        await call.emit(Redirect(reason))
        return True

    async def release(self, call: Call) -> None:
        return None  # closing the socket ends the call on Maqsam's side

    async def after_transfer(self, call: Call) -> None:
        if self.redirect_wait <= 0:
            return
        # The provider closing the socket cancels the call's handler, which ends this wait.
        await trio.sleep(self.redirect_wait)
        call.bump("redirect_wait_expired")
        log_event(
            log,
            logging.WARNING,
            "call.redirect_not_closed",
            session_id=call.session_id,
            waited=self.redirect_wait,
        )


class TwilioControl:
    """Hang-up and transfer through Twilio's REST API, for the stream's ``callSid``."""

    def __init__(self, rest: TwilioRest | None, codec: TwilioCodec) -> None:
        self.rest = rest
        self.codec = codec
        #: A hang-up or transfer was attempted: nothing is left to release.
        self.handled = False

    @property
    def call_sid(self) -> str | None:
        return self.codec.call_sid

    async def hang_up(self, call: Call, reason: str) -> None:
        self.handled = True
        if self.rest is None:
            return
        try:
            await self.rest.hang_up(self.call_sid)
        except ProviderError as exc:
            # Closing the socket still ends the <Stream>; Twilio then runs the TwiML after it.
            call.bump("provider_errors")
            log_event(
                log,
                logging.WARNING,
                "call.hangup_failed",
                session_id=call.session_id,
                code=exc.code,
            )

    async def transfer(self, call: Call, reason: str) -> bool:
        if self.rest is None:
            return False
        try:
            await self.rest.transfer(self.call_sid)
            self.handled = True
        except ProviderError as exc:
            call.bump("provider_errors")
            log_event(
                log,
                logging.WARNING,
                "call.transfer_failed",
                session_id=call.session_id,
                code=exc.code,
                status=exc.status,
            )
            return False
        return True

    async def after_transfer(self, call: Call) -> None:
        return None  # Twilio ends the stream itself once the call runs the new TwiML

    async def release(self, call: Call) -> None:
        # Only for a call that passed authentication (its set-up was accepted), that the caller
        # did not end (stop), and that the dialog did not already hang up or transfer.
        if self.handled or call.setup is None or self.codec.stopped or self.rest is None:
            return
        if not self.rest.configured:
            return
        await self.hang_up(call, "released")
