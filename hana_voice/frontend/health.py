"""What the front end's dashboard reads from /health (contract section 4), and the templates.

The dashboard knows three words for ``status``: ``healthy``, ``degraded`` and ``error``; it
also reads ``models.vosk_arabic`` and ``models.coqui_xtts`` (booleans), ``version`` and
``timestamp`` (epoch milliseconds: it calls ``new Date(timestamp)``). The service's own,
finer state (``loading``, ``unhealthy``...) stays in ``state``; the HTTP status code is
unchanged (200 while healthy or degraded, 503 otherwise), so load balancers see no change.
"""

from __future__ import annotations

import time
from typing import Any

from hana_voice.engines.manager import LOADED
from hana_voice.frontend.selection import template_source
from hana_voice.services import Services

#: The service's state -> the dashboard's word.
DASHBOARD_STATUS = {
    "healthy": "healthy",
    "degraded": "degraded",
    # Still answering and about to be ready: not a failure.
    "loading": "degraded",
    "unhealthy": "error",
}


def add_dashboard_fields(services: Services, body: dict[str, Any]) -> None:
    """Add the dashboard's fields and the template source to a /health body, in place."""
    state = str(body.get("status"))
    if services.registry.draining:
        state = "draining"
    source = template_source(services)
    if source is not None:
        body["templates"] = source.health()
        if source.state != "ok" and state == "healthy":
            # Calls on front-end templates may fail: worth a look, not a page.
            state = "degraded"
    body["state"] = state
    body["status"] = DASHBOARD_STATUS.get(state, "error")
    stt, tts = services.engines.stt_slot, services.engines.tts_slot
    # Beside the model downloads' section when there is one (MODELS_AUTO_DOWNLOAD).
    models = body.setdefault("models", {})
    models["vosk_arabic"] = stt.state == LOADED
    models["coqui_xtts"] = tts.state == LOADED and tts.name == "xtts"
    body["timestamp"] = int(time.time() * 1000)
