"""``X-Twilio-Signature``: our check agrees with Twilio's own helper library."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from hana_voice.telephony.twilio_signature import (
    compute_signature,
    signed_url,
    url_variants,
    valid,
)

TOKEN = "twilio-auth-token-0123456789abcdef"
URL = "wss://voice.example.org/ws/telephony/healthcare"

paths = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/-_.%", max_size=40)


@given(paths, st.sampled_from(["", "a=1", "token=x&questionnaire=7"]))
def test_same_signature_as_twilios_helper(path: str, query: str) -> None:
    url = f"wss://voice.example.org/{path}" + (f"?{query}" if query else "")
    assert compute_signature(TOKEN, url) == RequestValidator(TOKEN).compute_signature(url, {})


def test_valid_accepts_twilios_signature_only() -> None:
    signature = RequestValidator(TOKEN).compute_signature(URL, {})
    assert valid(TOKEN, signature, URL)
    assert not valid("another-auth-token", signature, URL)  # forged: another key
    assert not valid(TOKEN, signature, URL.replace("healthcare", "other"))  # another URL
    assert not valid(TOKEN, signature, URL.replace("wss://", "https://"))  # Twilio signs wss
    assert not valid(TOKEN, None, URL) and not valid(TOKEN, "", URL)
    assert not valid(TOKEN, signature[:-2], URL)
    assert not valid(TOKEN, "A" * 10_000, URL)


@pytest.mark.parametrize(
    ("signed", "seen"),
    [
        ("wss://h.example/ws", "wss://h.example:443/ws"),
        ("wss://h.example:443/ws", "wss://h.example/ws"),
        ("ws://h.example/ws", "ws://h.example:80/ws"),
    ],
)
def test_default_port_may_differ_as_in_twilios_helper(signed: str, seen: str) -> None:
    signature = RequestValidator(TOKEN).compute_signature(signed, {})
    assert valid(TOKEN, signature, seen)


def test_other_ports_are_not_interchangeable() -> None:
    signature = RequestValidator(TOKEN).compute_signature("wss://h.example:8443/ws", {})
    assert not valid(TOKEN, signature, "wss://h.example/ws")
    assert url_variants("wss://h.example:8443/ws") == ["wss://h.example:8443/ws"]
    assert url_variants("wss://h.example:bad/ws") == ["wss://h.example:bad/ws"]


@pytest.mark.parametrize(
    ("public_url", "host", "path", "query", "expected"),
    [
        (None, "127.0.0.1:8000", "/ws/telephony", b"", "wss://127.0.0.1:8000/ws/telephony"),
        (None, "h.example", "/ws/telephony", b"token=a%2Bb", "wss://h.example/ws/telephony?token=a%2Bb"),
        ("https://voice.example.org", "10.0.0.5:8000", "/ws/telephony", b"", URL.rsplit("/", 1)[0]),
        ("https://voice.example.org/hana/", "x", "/ws/telephony", b"", "wss://voice.example.org/hana/ws/telephony"),
        ("http://localhost:8000", "x", "/ws/telephony", "", "ws://localhost:8000/ws/telephony"),
        ("wss://voice.example.org", "x", "/ws", b"", "wss://voice.example.org/ws"),
    ],
)  # fmt: skip
def test_signed_url_is_rebuilt_as_twilio_dialled_it(
    public_url: str | None, host: str, path: str, query: bytes | str, expected: str
) -> None:
    assert signed_url(public_url, host, path, query) == expected
