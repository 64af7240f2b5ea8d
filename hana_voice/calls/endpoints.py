"""The WebSocket endpoints: admission, authentication and the choice of codec and dialog.

Every connection is accepted first and refused afterwards, so browsers can read the close code
and reason (a refused handshake shows them nothing). Order of checks: Origin allow-list
(browser endpoints), rate limit (1008), credentials (1008, Maqsam apiKey 1002; on
/ws/telephony* the X-Twilio-Signature when TWILIO_AUTH_TOKEN is set, and the token as a header,
``?token=`` or the ``token`` parameter of ``start``), session cap (1013). Telephony
connections that still have to authenticate inside the protocol wait *pending* (limited per
address, SETUP_TIMEOUT to send session.setup/start, not counted against the cap) and take a
session slot once authenticated. Then the call runs in its registry entry's cancel scope,
which server shutdown cancels to close with 1001.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio
from quart import current_app, websocket
from quart_trio import QuartTrio

from hana_voice import auth
from hana_voice.admission import CLOSE_POLICY, Refused, SessionHandle, client_address
from hana_voice.calls.call import Call
from hana_voice.calls.keepalive import keepalive_enabled
from hana_voice.calls.modes import echo_dialog, tts_dialog, voice_dialog
from hana_voice.calls.pacing import OUTBOUND_CHUNK_MS
from hana_voice.calls.questionnaire_dialog import questionnaire_dialog
from hana_voice.calls.session import Dialog, SetupCheck, run_call
from hana_voice.calls.transport import QuartTransport
from hana_voice.errors import AuthError
from hana_voice.events import CallStarted, Ready
from hana_voice.guard.principal import ANONYMOUS, Principal, claims_from
from hana_voice.logs import log_event
from hana_voice.protocols.base import Codec, Frame
from hana_voice.protocols.browser import BrowserCodec
from hana_voice.protocols.legacy import LegacyCodec, detect_dialect
from hana_voice.protocols.maqsam import MaqsamCodec
from hana_voice.protocols.twilio import TwilioCodec
from hana_voice.services import Services, services_of
from hana_voice.settings import Settings
from hana_voice.telephony.control import CallControl, FrameControl, TwilioControl
from hana_voice.telephony.twilio_signature import SIGNATURE_HEADER, signed_url

log = logging.getLogger(__name__)

TELEPHONY_RATE = 8000


@dataclass(frozen=True)
class Endpoint:
    path: str
    #: Registry kind: "browser", "maqsam" or "telephony".
    kind: str
    #: "voice", "questionnaire", "echo" or "tts".
    mode: str
    #: "open", "service", "maqsam" or "telephony".
    auth: str
    #: One line for the service index (GET /).
    description: str
    #: Whether the first frame may select the legacy text-frame dialect.
    legacy: bool = False


ENDPOINTS = (
    Endpoint("/ws", "browser", "voice", "open", "general voice channel: transcripts, say"),
    Endpoint(
        "/ws/healthcare-questionnaire",
        "browser",
        "questionnaire",
        "open",
        "healthcare questionnaire dialog",
    ),
    Endpoint("/ws/secure", "browser", "voice", "service", "authenticated /ws"),
    Endpoint(
        "/ws/secure/healthcare",
        "browser",
        "questionnaire",
        "service",
        "authenticated questionnaire",
    ),
    Endpoint("/ws/echo", "browser", "echo", "open", "speech-to-text only", legacy=True),
    Endpoint("/ws/tts", "browser", "tts", "open", "text-to-speech only", legacy=True),
    Endpoint("/ws/maqsam", "maqsam", "questionnaire", "maqsam", "Maqsam voice-agent protocol"),
    Endpoint("/ws/maqsam/healthcare", "maqsam", "questionnaire", "maqsam", "Maqsam questionnaire"),
    Endpoint(
        "/ws/maqsam/test",
        "maqsam",
        "questionnaire",
        "maqsam",
        "Maqsam test call (the front end's test-call page): the default questionnaire",
    ),
    Endpoint(
        "/ws/telephony",
        "telephony",
        "questionnaire",
        "telephony",
        "Twilio-style media streams (token required)",
    ),
    Endpoint(
        "/ws/telephony/healthcare",
        "telephony",
        "questionnaire",
        "telephony",
        "Twilio-style media streams questionnaire",
    ),
)


DIALOGS: dict[str, Dialog] = {
    "voice": voice_dialog,
    "echo": echo_dialog,
    "tts": tts_dialog,
    "questionnaire": questionnaire_dialog,
}


def register(app: QuartTrio, services: Services) -> None:
    for endpoint in ENDPOINTS:
        app.add_websocket(endpoint.path, endpoint.path, _handler(endpoint))


def _handler(endpoint: Endpoint) -> Callable[[], Awaitable[None]]:
    async def handler() -> None:
        await serve_endpoint(endpoint)

    handler.__name__ = "ws_" + endpoint.path.strip("/").replace("/", "_").replace("-", "_")
    return handler


async def serve_endpoint(endpoint: Endpoint) -> None:
    services = services_of(current_app)  # type: ignore[arg-type]  # always our QuartTrio app
    transport = QuartTransport(websocket._get_current_object(), services.settings.send_timeout)  # type: ignore[attr-defined]  # werkzeug LocalProxy API
    await websocket.accept()
    code, reason = 1000, "call ended"
    try:
        header_ok, address, principal = _admission_checks(endpoint, services)
        # Telephony authenticates inside the protocol (session.setup, start) unless a header
        # credential matched: until then the connection is pending, held to SETUP_TIMEOUT and
        # not counted against the cap; pending ones without a credential are limited per
        # address.
        pending = endpoint.kind in ("maqsam", "telephony")
        with services.registry.admit(
            endpoint.path,
            endpoint.kind,
            address=address,
            pending=pending,
            credentialed=header_ok,
        ) as handle:
            with handle.cancel_scope:
                code, reason = await _run(
                    endpoint, services, transport, handle, header_ok, principal
                )
            if handle.end_code is not None:
                code, reason = handle.end_code, handle.end_reason or "server restarting"
    except Refused as refused:
        code, reason = refused.close_code, refused.reason
    except AuthError as exc:
        services.registry.refuse("unauthorized")
        code, reason = exc.close_code, str(exc)
        log_event(log, logging.INFO, "ws.unauthorized", endpoint=endpoint.path)
    with trio.CancelScope(shield=True), contextlib.suppress(Exception):
        with trio.move_on_after(2):
            await transport.close(code, reason)


def _requested_url(settings: Settings) -> str:
    """The URL a provider dialled for this upgrade, as Twilio signs it (see twilio_signature)."""
    raw_path = websocket.scope.get("raw_path")
    path = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else websocket.path
    path = path.split("?", 1)[0]
    host = websocket.headers.get("Host", "")
    return signed_url(settings.public_url, host, path, websocket.query_string)


def _url_questionnaire() -> str | None:
    """``?questionnaire=<id>`` of the endpoint URL (operators set it per inbound number)."""
    value = (websocket.args.get("questionnaire") or "").strip()
    return value[:200] or None


def _admission_checks(endpoint: Endpoint, services: Services) -> tuple[bool, str, Principal]:
    """Raise Refused or AuthError; return whether a header (or query) credential matched (so
    that the set-up message's credential need not), the client's address, and whom the call
    speaks for."""
    settings = services.settings
    headers = websocket.headers
    origin = headers.get("Origin")
    allowed = settings.allowed_origins
    if endpoint.kind == "browser" and allowed and origin and origin.rstrip("/") not in allowed:
        services.registry.refuse("origin")
        raise Refused(CLOSE_POLICY, "origin not allowed")
    address = client_address(
        websocket.remote_addr, headers.get("X-Forwarded-For"), settings.trust_forwarded_for
    )
    if services.rate_limiter.check(address) is not None:
        services.registry.refuse("rate_limited")
        raise Refused(
            CLOSE_POLICY,
            f"rate limit: more than {settings.rate_limit_per_minute} connections a minute",
        )
    mode = endpoint.auth
    if mode == "open" and settings.require_auth:
        mode = "service"
    if mode == "service":
        method, claims = auth.service_credential(
            settings.voice_service_secret, headers.get("Authorization"), websocket.args.get("token")
        )
        return False, address, Principal(method, claims_from(claims))
    if mode == "telephony":
        auth.check_twilio_signature(
            settings.twilio_auth_token, headers.get(SIGNATURE_HEADER), _requested_url(settings)
        )
        header_ok = auth.check_telephony_token(
            settings.telephony_token, headers.get("Authorization"), websocket.args.get("token")
        )
        return header_ok, address, Principal("telephony")
    if mode == "maqsam":
        authed = auth.check_maqsam_header(
            settings.maqsam_token, headers.get("Auth"), headers.get("Authorization")
        )
        return bool(authed), address, Principal("maqsam")
    return False, address, ANONYMOUS


async def _run(
    endpoint: Endpoint,
    services: Services,
    transport: QuartTransport,
    handle: SessionHandle,
    header_ok: bool,
    principal: Principal,
) -> tuple[int, str]:
    settings = services.settings
    first_frames: list[Frame] = []
    on_setup: SetupCheck | None = None
    codec: Codec
    channel = "browser"
    control: CallControl = FrameControl()
    # Utility sockets are kept by pings instead of the idle timeout (calls/keepalive.py).
    idle = math.inf if keepalive_enabled(settings, endpoint.path) else None
    if endpoint.kind == "maqsam":
        codec = MaqsamCodec(questionnaire=_url_questionnaire(), chunk_ms=OUTBOUND_CHUNK_MS)
        channel = "telephony"
        on_setup = _maqsam_setup(header_ok)
        control = FrameControl(settings.maqsam_redirect_wait)
    elif endpoint.kind == "telephony":
        twilio = TwilioCodec(questionnaire=_url_questionnaire(), chunk_ms=OUTBOUND_CHUNK_MS)
        codec, channel = twilio, "telephony"
        on_setup = _telephony_setup(header_ok)
        control = TwilioControl(services.extras.get("twilio_rest"), twilio)
    else:
        codec = BrowserCodec(max_text_chars=settings.max_tts_chars)
        on_setup = _check_claims
        if endpoint.legacy:
            with trio.move_on_after(idle if idle is not None else settings.idle_timeout):
                first_frames.append(await transport.receive())
            if not first_frames:
                return 1000, f"idle timeout: no message for {settings.idle_timeout:g} s"
            if detect_dialect(first_frames[0], endpoint.path) == "legacy":
                codec = LegacyCodec(max_text_chars=settings.max_tts_chars)
    call = Call(
        services=services,
        handle=handle,
        transport=transport,
        codec=codec,
        channel=channel,
        mode=endpoint.mode,
        kind=endpoint.kind,
        out_rate=TELEPHONY_RATE if channel == "telephony" else settings.sample_rate,
        control=control,
        idle_timeout=idle,
        principal=principal,
    )
    if isinstance(codec, BrowserCodec):
        await call.emit(Ready(call.session_id))
    await run_call(
        call,
        DIALOGS[endpoint.mode],
        first_frames=first_frames,
        on_setup=on_setup,
        setup_timeout=settings.setup_timeout if not handle.admitted else None,
    )
    return call.end_code, call.end_reason


async def _check_claims(call: Call, setup: CallStarted) -> None:
    """A token bound to a patient answers only for that patient (AuthError: close 1008)."""
    call.principal.check_context(setup.context)


def _telephony_setup(header_ok: bool) -> SetupCheck:
    async def check(call: Call, setup: CallStarted) -> None:
        codec = call.codec
        assert isinstance(codec, TwilioCodec)
        if not header_ok:
            # Before any audio is processed or prompt played: start is the first event.
            auth.check_telephony_parameter(
                call.services.settings.telephony_token, codec.setup_token
            )
        # Authenticated: from now on the session counts against the cap (Refused: 1013).
        call.services.registry.promote(call.handle)
        await call.emit(Ready(call.session_id))

    return check


def _maqsam_setup(header_ok: bool) -> SetupCheck:
    async def check(call: Call, setup: CallStarted) -> None:
        codec = call.codec
        assert isinstance(codec, MaqsamCodec)
        if not header_ok:
            auth.check_maqsam_api_key(call.services.settings.maqsam_token, codec.setup_api_key)
        # Authenticated: from now on the session counts against the cap (Refused: 1013).
        call.services.registry.promote(call.handle)
        # session.ready exactly once, after authentication and set-up (the codec enforces once).
        await call.emit(Ready(call.session_id))

    return check
