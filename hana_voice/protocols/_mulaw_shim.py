"""The one place where the protocol codecs reach G.711 mu-law.

The codecs call only these two functions, so swapping the implementation behind them (today
:mod:`hana_voice.audio.mulaw`) touches this file alone.
"""

from __future__ import annotations

from hana_voice.audio import mulaw

__all__ = ["mulaw_decode", "mulaw_encode"]


def mulaw_decode(data: bytes) -> bytes:
    """Mu-law bytes to PCM s16le mono; every byte is a valid code."""
    return mulaw.decode(data)


def mulaw_encode(pcm: bytes) -> bytes:
    """PCM s16le mono to mu-law bytes; raises AudioError on an odd byte count."""
    return mulaw.encode(pcm)
