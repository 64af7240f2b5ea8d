"""The feature modules wired into the app, each a ``plugin(app, services)`` function.

Kept in one list so ``create_app`` stays small and each feature owns its routes and start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quart_trio import QuartTrio

    from hana_voice.services import Services

Plugin = Callable[["QuartTrio", "Services"], Any]

PLUGINS: list[Plugin] = []


def _calls(app: QuartTrio, services: Services) -> None:
    from hana_voice.calls.endpoints import register

    register(app, services)


PLUGINS.append(_calls)


def _wiring(app: QuartTrio, services: Services) -> None:
    from hana_voice.wiring import install

    install(app, services)


PLUGINS.insert(0, _wiring)


def _metrics(app: QuartTrio, services: Services) -> None:
    from hana_voice.metrics import install

    install(app, services)


PLUGINS.append(_metrics)


def _telephony(app: QuartTrio, services: Services) -> None:
    from hana_voice.telephony.setup import install

    install(app, services)


PLUGINS.append(_telephony)


def _demo(app: QuartTrio, services: Services) -> None:
    from hana_voice.demo import install

    install(app, services)


PLUGINS.append(_demo)


def _pacing(app: QuartTrio, services: Services) -> None:
    # Media plane (issue 16): one pacing clock for every call's reply audio.
    from hana_voice.calls.pacing import install

    install(app, services)


PLUGINS.append(_pacing)


def _models(app: QuartTrio, services: Services) -> None:
    from hana_voice.models.auto import install

    install(app, services)


PLUGINS.append(_models)


def _frontend(app: QuartTrio, services: Services) -> None:
    # The front end's templates, CORS and dashboard fields (issue 10).
    from hana_voice.frontend import install

    install(app, services)


PLUGINS.append(_frontend)
