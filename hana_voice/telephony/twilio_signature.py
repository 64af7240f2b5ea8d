"""``X-Twilio-Signature`` on the WebSocket upgrade of a Twilio media stream.

Twilio signs every request it makes with HMAC-SHA1, keyed with the account's auth token, over
the URL it requested followed by the POST parameters sorted by name (base64 of the digest).
A media-stream upgrade is a GET, so there are no parameters: the signed text is the URL of
``<Stream url="wss://...">`` exactly as Twilio dialled it, with the ``wss`` scheme (Twilio
only streams over wss, and signs the URL with that scheme, not ``https``).

Behind a TLS-terminating proxy the server sees ``ws://`` and possibly another host or a
stripped path prefix, so the URL is rebuilt: the scheme is always the one of Twilio's request
(``wss``, or ``ws`` when ``PUBLIC_URL`` says plain ``http``/``ws``), the host and path prefix
come from ``PUBLIC_URL`` when set, else from the ``Host`` header, then the request path and raw
query string. Like Twilio's own helper library, the URL is tried with and without the scheme's
default port, because proxies differ on whether they keep ``:443``. Every candidate is
compared in constant time; the auth token and the signature are never logged.

Not supported: Webhooks-Rule signatures (``X-Twilio-Webhooks-Signature-Settings``, HMAC-SHA256
with a shared key); such a request fails as a wrong signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlsplit, urlunsplit

__all__ = ["SIGNATURE_HEADER", "compute_signature", "signed_url", "url_variants", "valid"]

SIGNATURE_HEADER = "X-Twilio-Signature"
_DEFAULT_PORTS = {"wss": 443, "https": 443, "ws": 80, "http": 80}
_WS_SCHEME = {"https": "wss", "wss": "wss", "http": "ws", "ws": "ws"}
#: Signatures are 28 base64 characters; anything much longer is not one (and is not hashed).
_MAX_SIGNATURE = 100


def compute_signature(auth_token: str, url: str) -> str:
    """Twilio's signature of a request to ``url`` without POST parameters."""
    digest = hmac.new(auth_token.encode(), url.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signed_url(public_url: str | None, host: str, path: str, query: bytes | str) -> str:
    """The URL Twilio requested, rebuilt from the upgrade request (see the module docstring)."""
    raw_query = query.decode("latin-1") if isinstance(query, bytes) else query
    if public_url:
        base = urlsplit(public_url)
        scheme, netloc = _WS_SCHEME[base.scheme], base.netloc
        path = base.path.rstrip("/") + path
    else:
        scheme, netloc = "wss", host
    return urlunsplit((scheme, netloc, path, raw_query, ""))


def url_variants(url: str) -> list[str]:
    """``url`` as given, and with the scheme's default port removed or added."""
    parts = urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme)
    variants = [url]
    try:
        port = parts.port
    except ValueError:
        return variants  # a Host header with a bad port: only the literal URL can match
    hostname = parts.netloc.rsplit(":", 1)[0] if port is not None else parts.netloc
    if port is None and default is not None:
        variants.append(urlunsplit(parts._replace(netloc=f"{hostname}:{default}")))
    elif port is not None and port == default:
        variants.append(urlunsplit(parts._replace(netloc=hostname)))
    return variants


def valid(auth_token: str, signature: str | None, url: str) -> bool:
    """Whether ``signature`` is Twilio's for ``url`` (or its default-port variant)."""
    if not signature or len(signature) > _MAX_SIGNATURE:
        return False
    given = signature.strip().encode()
    matched = False
    for candidate in url_variants(url):
        # No early exit: every candidate is compared, each in constant time.
        matched |= hmac.compare_digest(compute_signature(auth_token, candidate).encode(), given)
    return matched
