"""A fake of Twilio's REST API for call updates, on a real loopback HTTP server (h11 + trio).

It answers ``POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`` the way Twilio does
and checks what Twilio checks: the path, HTTP basic auth with the account SID and auth token,
and a form body holding ``Status=completed`` or ``Twiml=...``. Anything else is answered as
Twilio would (401 for credentials, 404 for another path, 400 for a bad body) and recorded as a
problem, so a test sees exactly what the server sent.

Failures on demand: ``fail_with`` (a status for the next N requests: 401, 500...) and ``hang``
(accept the request, never answer). ``on_update`` runs after a successful update, which is
where a simulated Twilio ends the media stream (``stop``, then the socket closes), as the
real one does once a call leaves its ``<Connect><Stream>``.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import parse_qs

import h11
import trio

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-auth-token-0123456789abcdef"
TRANSFER_TO = "+966112345678"

UpdateHook = Callable[[str, dict[str, str]], Awaitable[None]]


@dataclass
class ApiRequest:
    method: str
    path: str
    authorization: str | None
    content_type: str | None
    form: dict[str, str]
    status: int


@dataclass
class FakeTwilioApi:
    url: str = ""
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    requests: list[ApiRequest] = field(default_factory=list)
    #: Status answered to the next ``fail_count`` requests (None: answer normally).
    fail_with: int | None = None
    fail_count: float = math.inf
    hang: bool = False
    on_update: UpdateHook | None = None
    updated: trio.Event = field(default_factory=trio.Event)

    def fail(self, status: int, times: float = math.inf) -> None:
        self.fail_with, self.fail_count = status, times

    @property
    def updates(self) -> list[ApiRequest]:
        """The requests Twilio would have applied (2xx)."""
        return [r for r in self.requests if 200 <= r.status < 300]

    # ------------------------------------------------------------------ HTTP

    async def serve(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            request, body = await self._read(conn, stream)
            if request is None:
                return
            status, payload = await self._answer(request, body)
            if status is None:
                await trio.sleep_forever()  # hang: the client's deadline must end it
            data = json.dumps(payload).encode()
            headers = [
                ("content-type", "application/json"),
                ("content-length", str(len(data))),
                ("connection", "close"),
            ]
            await stream.send_all(conn.send(h11.Response(status_code=status, headers=headers)))
            await stream.send_all(conn.send(h11.Data(data=data)))
            await stream.send_all(conn.send(h11.EndOfMessage()))
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
            pass
        finally:
            await stream.aclose()

    async def _read(
        self, conn: h11.Connection, stream: trio.SocketStream
    ) -> tuple[h11.Request | None, bytes]:
        request: h11.Request | None = None
        body = b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                conn.receive_data(data)
                if not data:
                    return None, b""
                continue
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return request, body
            elif isinstance(event, h11.ConnectionClosed):
                return None, b""

    async def _answer(self, request: h11.Request, body: bytes) -> tuple[int | None, Any]:
        headers = {k.decode().lower(): v.decode() for k, v in request.headers}
        target = request.target.decode()
        form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        record = ApiRequest(
            request.method.decode(),
            target,
            headers.get("authorization"),
            headers.get("content-type"),
            form,
            0,
        )
        self.requests.append(record)
        status, payload = self._check(record)
        if status == 200 and self.fail_with is not None and self.fail_count > 0:
            self.fail_count -= 1
            status, payload = self.fail_with, {"code": 20500, "message": "failure on demand"}
        if status == 200 and self.hang:
            record.status = -1
            return None, None
        record.status = status
        if status == 200:
            call_sid = target.rsplit("/", 1)[-1].removesuffix(".json")
            if self.on_update is not None:
                await self.on_update(call_sid, form)
            self.updated.set()
        return status, payload

    def _check(self, r: ApiRequest) -> tuple[int, dict[str, Any]]:
        prefix = f"/2010-04-01/Accounts/{self.account_sid}/Calls/"
        if r.method != "POST" or not r.path.startswith(prefix) or not r.path.endswith(".json"):
            return 404, {"code": 20404, "message": "The requested resource was not found"}
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if r.authorization != f"Basic {expected}":
            return 401, {"code": 20003, "message": "Authenticate"}
        if not (r.content_type or "").startswith("application/x-www-form-urlencoded"):
            return 400, {"code": 21601, "message": "form body expected"}
        status_ok = r.form == {"Status": "completed"}
        twiml_ok = set(r.form) == {"Twiml"} and r.form["Twiml"].startswith("<Response>")
        if not (status_ok or twiml_ok):
            return 400, {"code": 21218, "message": "Invalid update"}
        return 200, {"sid": r.path.rsplit("/", 1)[-1].removesuffix(".json"), "status": "x"}


@asynccontextmanager
async def fake_twilio_api() -> AsyncIterator[FakeTwilioApi]:
    api = FakeTwilioApi()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, api.serve, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        api.url = f"http://127.0.0.1:{port}"
        try:
            yield api
        finally:
            nursery.cancel_scope.cancel()
