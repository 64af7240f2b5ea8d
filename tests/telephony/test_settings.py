"""The telephony settings of issue 12: Twilio REST and signatures, PUBLIC_URL, Maqsam's wait."""

from __future__ import annotations

import pytest

from hana_voice.errors import SettingsError
from hana_voice.settings import DEFAULT_TWILIO_API_URL, Settings

SID = "AC" + "0123456789abcdef" * 2


def test_defaults_leave_twilio_unconfigured() -> None:
    s = Settings.from_env({})
    assert (s.twilio_account_sid, s.twilio_auth_token, s.twilio_transfer_to) == (None, None, None)
    assert s.twilio_api_url == DEFAULT_TWILIO_API_URL == "https://api.twilio.com"
    assert (s.twilio_api_timeout, s.maqsam_redirect_wait, s.public_url) == (5.0, 10.0, None)


def test_values_are_parsed_and_secrets_stay_out_of_repr() -> None:
    s = Settings.from_env(
        {
            "TWILIO_ACCOUNT_SID": SID,
            "TWILIO_AUTH_TOKEN": "auth-token-value-0123456789abcdef",
            "TWILIO_API_URL": "http://127.0.0.1:9999/",
            "TWILIO_TRANSFER_TO": "+966112345678",
            "TWILIO_API_TIMEOUT": "2.5",
            "PUBLIC_URL": "https://voice.example.org/hana/",
            "MAQSAM_REDIRECT_WAIT": "0",
        }
    )
    assert s.twilio_account_sid == SID and s.twilio_api_url == "http://127.0.0.1:9999"
    assert s.public_url == "https://voice.example.org/hana"
    assert (s.twilio_api_timeout, s.maqsam_redirect_wait) == (2.5, 0.0)
    assert "auth-token-value-0123456789abcdef" not in repr(s) and "+966112345678" not in repr(s)
    sip = Settings.from_env({"TWILIO_TRANSFER_TO": "sip:desk@pbx.example.org"})
    assert sip.twilio_transfer_to == "sip:desk@pbx.example.org"


@pytest.mark.parametrize(
    ("env", "variable", "fragment"),
    [
        ({"TWILIO_ACCOUNT_SID": "AC123"}, "TWILIO_ACCOUNT_SID", "32 hex digits"),
        ({"TWILIO_API_URL": "api.twilio.com"}, "TWILIO_API_URL", "http"),
        ({"TWILIO_TRANSFER_TO": "0501234567"}, "TWILIO_TRANSFER_TO", "E.164"),
        ({"TWILIO_TRANSFER_TO": "sip:<x>"}, "TWILIO_TRANSFER_TO", "SIP URI"),
        ({"TWILIO_API_TIMEOUT": "0"}, "TWILIO_API_TIMEOUT", "out of range"),
        ({"PUBLIC_URL": "voice.example.org"}, "PUBLIC_URL", "https://host"),
        ({"PUBLIC_URL": "https://voice.example.org/?a=1"}, "PUBLIC_URL", "query"),
        ({"MAQSAM_REDIRECT_WAIT": "-1"}, "MAQSAM_REDIRECT_WAIT", "out of range"),
    ],
)
def test_bad_values_name_variable_problem_and_accepted(
    env: dict[str, str], variable: str, fragment: str
) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert info.value.variable == variable
    assert fragment in str(info.value) and "accepted" in str(info.value)


def test_a_bad_transfer_number_is_not_echoed() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"TWILIO_TRANSFER_TO": "966 50 123 4567"})
    assert "966 50 123 4567" not in str(info.value)
