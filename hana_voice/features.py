"""The feature modules wired into the app, each a ``plugin(app, services)`` function.

Kept in one list so ``create_app`` stays small and each feature owns its routes and start-up.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quart_trio import QuartTrio

    from hana_voice.services import Services

Plugin = Callable[["QuartTrio", "Services"], Any]

# (module, entry point) in start-up order. Imported lazily, when the plugin runs, so that
# importing this list pulls in no feature (and none of their heavy dependencies).
_FEATURES: tuple[tuple[str, str], ...] = (
    ("hana_voice.wiring", "install"),
    ("hana_voice.calls.endpoints", "register"),
    ("hana_voice.metrics", "install"),
    ("hana_voice.telephony.setup", "install"),
    ("hana_voice.demo", "install"),
    # Media plane (issue 16): one pacing clock for every call's reply audio.
    ("hana_voice.calls.pacing", "install"),
    ("hana_voice.models.auto", "install"),
    # The front end's templates, CORS and dashboard fields (issue 10).
    ("hana_voice.frontend", "install"),
)


def _plugin(module: str, entry: str) -> Plugin:
    def plugin(app: QuartTrio, services: Services) -> Any:
        return getattr(importlib.import_module(module), entry)(app, services)

    plugin.__name__ = plugin.__qualname__ = f"{module}.{entry}"
    return plugin


PLUGINS: list[Plugin] = [_plugin(module, entry) for module, entry in _FEATURES]
