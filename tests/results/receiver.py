"""A real HTTP receiver standing in for the Hana front end's submit route, for tests.

A QuartTrio app served by Hypercorn on 127.0.0.1 (a free port, or ``port``). It verifies each
request's JWT with the shared secret (and the ``voice_service`` role), records what arrived
and answers with the next status from ``statuses`` (then 200). While ``down`` it takes
connections and never answers (a front end that hangs), recording nothing. Like the front
end, it stores a call once: a second 2xx for a known idempotency key is a duplicate, not
``accepted``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jwt
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import Response, jsonify, request
from quart_trio import QuartTrio

from hana_voice.results.handover import JWT_ROLE, SUBMIT_PATH


@dataclass
class Received:
    status: int
    idempotency_key: str | None
    claims: dict[str, Any]
    body: dict[str, Any]


@dataclass
class Receiver:
    secret: str
    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    url: str = ""
    down: bool = False
    _arrived: trio.Event = field(default_factory=trio.Event)

    @property
    def delivered(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.status < 300]

    @property
    def accepted(self) -> list[Received]:
        """The first 2xx of each idempotency key: what the front end stored."""
        first: dict[str | None, Received] = {}
        for received in self.delivered:
            first.setdefault(received.idempotency_key, received)
        return list(first.values())

    async def wait_accepted(self, count: int) -> None:
        while len(self.accepted) < count:
            await self._arrived.wait()

    async def wait_delivered(self, count: int) -> None:
        """Return once ``count`` requests have been answered with a 2xx."""
        while len(self.delivered) < count:
            await self._arrived.wait()

    def app(self) -> QuartTrio:
        app = QuartTrio(__name__)

        @app.post(SUBMIT_PATH)
        async def submit() -> tuple[Response, int]:
            header = request.headers.get("Authorization", "")
            try:
                claims = jwt.decode(header.removeprefix("Bearer "), self.secret, ["HS256"])
            except jwt.InvalidTokenError:
                return jsonify({"error": "bad token"}), 401
            if claims.get("role") != JWT_ROLE:
                return jsonify({"error": "wrong role"}), 403
            body = await request.get_json()
            if self.down:
                await trio.sleep_forever()
            await trio.sleep(self.delay)
            status = self.statuses.pop(0) if self.statuses else 200
            key = request.headers.get("Idempotency-Key")
            self.received.append(Received(status, key, claims, body))
            self._arrived.set()
            self._arrived = trio.Event()
            return jsonify({"ok": 200 <= status < 300}), status

        return app

    async def serve(self, nursery: trio.Nursery, port: int = 0) -> None:
        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.accesslog = None
        config.errorlog = None
        binds = await nursery.start(serve, self.app(), config)
        self.url = binds[0]
