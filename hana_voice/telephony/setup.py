"""Start-up of the telephony side effects: one Twilio REST client per process."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

from hana_voice.logs import log_event
from hana_voice.telephony.twilio_rest import TwilioRest

if TYPE_CHECKING:
    from quart_trio import QuartTrio

    from hana_voice.services import Services

log = logging.getLogger(__name__)


def install(app: QuartTrio, services: Services) -> None:
    @app.while_serving
    async def twilio_rest_lifespan() -> AsyncGenerator[None, None]:
        rest = TwilioRest(services.settings, services.metrics)
        services.extras["twilio_rest"] = rest
        settings = services.settings
        log_event(
            log,
            logging.INFO,
            "twilio.configured",
            rest=rest.configured,
            transfer=rest.can_transfer,
            signatures=settings.twilio_auth_token is not None,
        )
        try:
            yield
        finally:
            services.extras.pop("twilio_rest", None)
            await rest.aclose()
