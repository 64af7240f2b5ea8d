"""The four wire formats as pure sans-IO codecs (STYLE.md rule 1).

=====================  ====================================================  =================
codec                  endpoints                                              module
=====================  ====================================================  =================
:class:`BrowserCodec`  /ws, /ws/healthcare-questionnaire, /ws/secure*,        ``browser``
                       JSON dialect of /ws/echo and /ws/tts
:class:`LegacyCodec`   legacy dialect of /ws/echo and /ws/tts                 ``legacy``
:class:`MaqsamCodec`   /ws/maqsam, /ws/maqsam/healthcare                      ``maqsam``
:class:`TwilioCodec`   /ws/telephony, /ws/telephony/healthcare                ``twilio``
=====================  ====================================================  =================

Each has ``receive(frame) -> list[InboundEvent]`` and ``send(event) -> list[Frame]`` and raises
only :class:`~hana_voice.errors.ProtocolError` (or its :class:`~hana_voice.errors.AuthError`)
for anything a peer sends. docs/protocol.md is the reference for integrators.
"""

from __future__ import annotations

from hana_voice.protocols.base import (
    Codec,
    Frame,
    InboundEvent,
    LegacyAudio,
    OutboundEvent,
    UtteranceIn,
)
from hana_voice.protocols.browser import BrowserCodec
from hana_voice.protocols.legacy import Dialect, LegacyCodec, detect_dialect
from hana_voice.protocols.maqsam import MaqsamCodec
from hana_voice.protocols.twilio import TwilioCodec

__all__ = [
    "BrowserCodec",
    "Codec",
    "Dialect",
    "Frame",
    "InboundEvent",
    "LegacyAudio",
    "LegacyCodec",
    "MaqsamCodec",
    "OutboundEvent",
    "TwilioCodec",
    "UtteranceIn",
    "detect_dialect",
]
