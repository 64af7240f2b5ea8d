"""G.711 mu-law, the 8-bit companding of telephony media streams (Twilio, Maqsam).

Both directions are table lookups: every int16 value maps to one code and every code to one
int16 value, so a 20 ms frame costs one numpy fancy-index, not a Python loop. The tables are
built once at import from the segment algorithm of ITU-T G.711 as the Sun reference
implementation (``g711.c``, also used by ffmpeg's ``pcm_mulaw``) applies it to 16-bit input:
drop the two low bits, clip to 8159, add the bias of 33, find the segment, keep four mantissa
bits and invert all bits of the result.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from hana_voice.audio.pcm import pcm16_samples

__all__ = ["MULAW_SILENCE", "decode", "decode_samples", "encode", "encode_samples"]

#: The code for a zero sample; fill value for padding mu-law streams with silence.
MULAW_SILENCE = 0xFF

_BIAS = 0x84  # 33 in 14-bit units, 132 in 16-bit units
_CLIP = 8159  # largest 14-bit magnitude that the bias keeps inside segment 7


def _build_encode_table() -> npt.NDArray[np.uint8]:
    # Indexed by the int16 sample reinterpreted as uint16, hence the view below.
    samples = np.arange(-32768, 32768, dtype=np.int32)
    shifted = samples >> 2  # arithmetic shift: floors negatives, as g711.c does
    negative = shifted < 0
    magnitude = np.minimum(np.where(negative, -shifted, shifted), _CLIP) + (_BIAS >> 2)
    # The clipped maximum, 8159 + 33, is 8192, one past segment 7; g711.c answers it with the
    # loudest code, which is what capping at 8191 gives.
    magnitude = np.minimum(magnitude, 8191)
    # magnitude lies in [33, 8192): its highest set bit (5..12) gives the segment (0..7).
    segment = np.floor(np.log2(magnitude)).astype(np.int32) - 5
    mantissa = (magnitude >> (segment + 1)) & 0x0F
    code = (segment << 4) | mantissa
    code = np.where(negative, code ^ 0x7F, code ^ 0xFF)
    table = np.empty(65536, dtype=np.uint8)
    table[samples.astype(np.int16).view(np.uint16)] = code
    return table


def _build_decode_table() -> npt.NDArray[np.int16]:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    segment = (codes >> 4) & 0x07
    magnitude = (((codes & 0x0F) << 3) + _BIAS) << segment
    return np.where(codes & 0x80, _BIAS - magnitude, magnitude - _BIAS).astype(np.int16)


_ENCODE = _build_encode_table()
_DECODE = _build_decode_table()
_ENCODE.setflags(write=False)
_DECODE.setflags(write=False)


def encode_samples(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.uint8]:
    """Mu-law codes of int16 samples."""
    return _ENCODE[samples.astype(np.int16, copy=False).view(np.uint16)]


def decode_samples(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.int16]:
    """int16 samples of mu-law codes."""
    return _DECODE[codes]


def encode(pcm: bytes) -> bytes:
    """Encode PCM s16le to mu-law bytes (one byte per sample).

    Raises :class:`~hana_voice.errors.AudioError` on an odd byte count.
    """
    return encode_samples(pcm16_samples(pcm)).tobytes()


def decode(ulaw: bytes) -> bytes:
    """Decode mu-law bytes to PCM s16le (two bytes per sample). Every byte is a valid code."""
    return _DECODE[np.frombuffer(ulaw, dtype=np.uint8)].astype("<i2", copy=False).tobytes()
