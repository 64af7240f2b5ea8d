"""Credentials: bearer secrets, short-lived tokens, Maqsam and telephony tokens.

All comparisons are constant-time. Used by the HTTP routes (/auth/token, /calls, /metrics) and
the WebSocket endpoints:

- /ws/secure*: ``Authorization: Bearer <VOICE_SERVICE_SECRET>`` (server to server) or
  ``?token=<JWT>`` minted by GET /auth/token (HS256, signed with the secret, at most 1 h).
- /ws/maqsam*: the ``Auth`` handshake header holding the raw MAQSAM_TOKEN, or
  ``Authorization: Bearer <MAQSAM_TOKEN>``, or ``apiKey`` in ``session.setup`` (checked by the
  session, close 1002 on failure as Maqsam's examples do).
- /ws/telephony*: TELEPHONY_TOKEN as the ``token`` parameter of the stream's ``start``
  (Twilio ``<Parameter name="token">``, checked by the session), ``?token=`` or bearer header;
  with TWILIO_AUTH_TOKEN set, also a valid ``X-Twilio-Signature`` on the upgrade.

Credentials never appear in logs or close reasons.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping
from typing import Any

import jwt

from hana_voice.errors import AuthError
from hana_voice.protocols.maqsam import APIKEY_CLOSE_CODE

MAX_TOKEN_SECONDS = 3600


def same(given: str | None, expected: str) -> bool:
    if given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def check_service_auth(secret: str | None, authorization: str | None, token: str | None) -> str:
    """Accept the bearer secret or a valid short-lived token; return the method used."""
    return service_credential(secret, authorization, token)[0]


def service_credential(
    secret: str | None, authorization: str | None, token: str | None
) -> tuple[str, dict[str, Any]]:
    """Like :func:`check_service_auth`, also returning a token's claims ({} for bearer)."""
    if secret is None:
        raise AuthError("authentication is not configured on this server (no secret set)")
    given = bearer(authorization)
    if given is not None:
        if same(given, secret):
            return "bearer", {}
        raise AuthError("wrong bearer credentials")
    if not token:
        raise AuthError("missing credentials: send a bearer secret or ?token=")
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["exp", "iat"]}
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("token expired") from None
    except jwt.InvalidTokenError:
        raise AuthError("invalid token") from None
    # PyJWT itself refuses a token whose iat lies in the future (ImmatureSignatureError).
    if int(claims["exp"]) - int(claims["iat"]) > MAX_TOKEN_SECONDS:
        raise AuthError("token lifetime exceeds one hour")
    return "token", claims


def mint_token(secret: str, ttl: int, subject: str, bound: Mapping[str, str] | None = None) -> str:
    """A token for /ws/secure*, valid ``ttl`` seconds (at most MAX_TOKEN_SECONDS).

    ``bound``: the patient_id/hospital_id/campaign_id the token may answer for.
    """
    if not 1 <= ttl <= MAX_TOKEN_SECONDS:
        raise ValueError(f"ttl must be 1..{MAX_TOKEN_SECONDS} seconds")
    now = int(time.time())
    claims: dict[str, Any] = {"sub": subject[:64], "scope": "ws", "iat": now, "exp": now + ttl}
    claims.update(bound or {})
    return jwt.encode(claims, secret, algorithm="HS256")


def check_maqsam_header(
    token: str | None, auth_header: str | None, authorization: str | None
) -> bool | None:
    """True: a header credential matched. None: no header credential (apiKey may follow).

    Raises AuthError (close 1008) when a header credential is present but wrong, or when
    the integration is not configured.
    """
    if token is None:
        raise AuthError("Maqsam integration is not configured (MAQSAM_TOKEN unset)")
    given = auth_header.strip() if auth_header else bearer(authorization)
    if given is None:
        return None
    if same(given, token):
        return True
    raise AuthError("Unauthorized")


def check_maqsam_api_key(token: str | None, api_key: str | None) -> None:
    """Check ``session.setup.apiKey``; failures close with 1002 as Maqsam's examples do."""
    if token is None:
        raise AuthError("Maqsam integration is not configured", close_code=APIKEY_CLOSE_CODE)
    if not same(api_key, token):
        raise AuthError("Unauthorized: missing or wrong apiKey", close_code=APIKEY_CLOSE_CODE)


TELEPHONY_REFUSED = "missing or wrong telephony token"


def check_telephony_token(
    expected: str | None, authorization: str | None, query: str | None
) -> bool:
    """True: a bearer or ``?token=`` credential matched. False: none was given, and the
    ``token`` parameter of the stream's ``start`` must carry it (checked by the session).

    Raises AuthError when one is given but wrong, or when the integration is not configured.
    """
    if expected is None:
        raise AuthError("telephony integration is not configured (TELEPHONY_TOKEN unset)")
    given = bearer(authorization) or query
    if not given:
        return False
    if not same(given, expected):
        raise AuthError(TELEPHONY_REFUSED)
    return True


def check_telephony_parameter(expected: str | None, token: str | None) -> None:
    """Check the ``<Parameter name="token">`` of a media stream's ``start`` (close 1008)."""
    if expected is None:
        raise AuthError("telephony integration is not configured (TELEPHONY_TOKEN unset)")
    if not same(token, expected):
        raise AuthError(TELEPHONY_REFUSED)


def check_twilio_signature(auth_token: str | None, signature: str | None, url: str) -> None:
    """With TWILIO_AUTH_TOKEN set, the upgrade must carry Twilio's signature of ``url``."""
    from hana_voice.telephony.twilio_signature import valid

    if auth_token is None:
        return
    if not signature:
        raise AuthError("missing X-Twilio-Signature")
    if not valid(auth_token, signature, url):
        raise AuthError("invalid X-Twilio-Signature")
