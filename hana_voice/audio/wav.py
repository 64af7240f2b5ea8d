"""WAV (RIFF/WAVE) files: read any common layout to PCM s16le mono, write 16-bit mono.

Reading parses the RIFF chunks itself instead of using the stdlib :mod:`wave`, because on
Python 3.11 ``wave`` accepts only integer PCM (format tag 1) and refuses IEEE float (3), mu-law
(7) and WAVE_FORMAT_EXTENSIBLE (0xFFFE), which browsers, sox and telephony recorders all write.
Writing uses :mod:`wave`: 16-bit mono PCM is what it does well and what every browser plays.

Malformed files raise :class:`~hana_voice.errors.AudioError` naming what is wrong; a data
chunk whose declared size runs past the end (streamed recordings write 0 or 0xFFFFFFFF) is
read up to the last whole frame present.
"""

from __future__ import annotations

import io
import struct
import wave
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hana_voice.audio import mulaw
from hana_voice.audio.pcm import float32_to_pcm16, pcm16_samples
from hana_voice.errors import AudioError

__all__ = ["WavFormat", "is_wav", "read_wav", "write_wav"]

_PCM = 0x0001
_IEEE_FLOAT = 0x0003
_MULAW = 0x0007
_EXTENSIBLE = 0xFFFE
_FORMAT_NAMES = {_PCM: "PCM", _IEEE_FLOAT: "IEEE float", _MULAW: "mu-law"}
_MAX_CHANNELS = 32


@dataclass(frozen=True)
class WavFormat:
    """The layout declared by a WAV file's ``fmt `` chunk (extensible resolved to its subformat)."""

    format_tag: int
    channels: int
    sample_rate: int
    bits_per_sample: int

    @property
    def block_align(self) -> int:
        return self.channels * self.bits_per_sample // 8


def is_wav(data: bytes) -> bool:
    """Whether ``data`` starts like a RIFF/WAVE file."""
    return len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WAVE"


def _parse_fmt(body: bytes) -> WavFormat:
    if len(body) < 16:
        raise AudioError(f"WAV fmt chunk is {len(body)} bytes, needs at least 16")
    tag, channels, rate, _byte_rate, _align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _EXTENSIBLE:
        if len(body) < 40:
            raise AudioError("WAV extensible fmt chunk is too short for its subformat")
        # The subformat GUID starts with the plain format tag it stands for.
        (tag,) = struct.unpack_from("<H", body, 24)
    fmt = WavFormat(tag, channels, rate, bits)
    supported = {_PCM: (8, 16, 24, 32), _IEEE_FLOAT: (32, 64), _MULAW: (8,)}
    if tag not in supported:
        raise AudioError(f"WAV format tag {tag:#06x} is not supported (PCM, IEEE float, mu-law)")
    if bits not in supported[tag]:
        raise AudioError(f"WAV {_FORMAT_NAMES[tag]} with {bits} bits per sample is not supported")
    if not 1 <= channels <= _MAX_CHANNELS:
        raise AudioError(f"WAV declares {channels} channels")
    if not 1000 <= rate <= 384_000:
        raise AudioError(f"WAV sample rate {rate} Hz is out of range")
    return fmt


def _chunks(data: bytes) -> tuple[WavFormat, memoryview]:
    view = memoryview(data)
    fmt: WavFormat | None = None
    offset = 12
    while offset + 8 <= len(data):
        chunk_id = bytes(view[offset : offset + 4])
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body = view[offset + 8 : offset + 8 + size]
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(bytes(body))
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioError("WAV data chunk comes before its fmt chunk")
            return fmt, body
        offset += 8 + size + (size & 1)  # chunks are padded to even sizes
    raise AudioError("WAV file has no fmt chunk" if fmt is None else "WAV file has no data chunk")


def _to_float(fmt: WavFormat, body: memoryview) -> npt.NDArray[np.float64]:
    """Samples of every channel, interleaved, scaled to [-1, 1)."""
    raw = np.frombuffer(body, dtype=np.uint8)
    if fmt.format_tag == _MULAW:
        return mulaw.decode_samples(raw).astype(np.float64) / 32768.0
    if fmt.format_tag == _IEEE_FLOAT:
        floats = raw.view("<f4" if fmt.bits_per_sample == 32 else "<f8")
        return np.nan_to_num(floats.astype(np.float64), nan=0.0, posinf=1.0, neginf=-1.0)
    if fmt.bits_per_sample == 8:  # 8-bit WAV is unsigned, centred on 128
        return (raw.astype(np.float64) - 128.0) / 128.0
    if fmt.bits_per_sample == 24:
        triplets = raw.reshape(-1, 3).astype(np.int32)
        ints = triplets[:, 0] | (triplets[:, 1] << 8) | (triplets[:, 2] << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        return ints.astype(np.float64) / float(1 << 23)
    dtype = "<i2" if fmt.bits_per_sample == 16 else "<i4"
    return raw.view(dtype).astype(np.float64) / float(1 << (fmt.bits_per_sample - 1))


def read_wav(data: bytes, *, max_seconds: float | None = None) -> tuple[bytes, int]:
    """Decode a WAV file to ``(pcm_s16le_mono, sample_rate)``.

    Channels are averaged into one. Raises :class:`AudioError` for anything that is not a
    readable WAV file, and when the audio is longer than ``max_seconds``.
    """
    if not is_wav(data):
        raise AudioError("not a WAV file (no RIFF/WAVE header)")
    fmt, body = _chunks(data)
    frames = len(body) // fmt.block_align
    if max_seconds is not None and frames > max_seconds * fmt.sample_rate:
        raise AudioError(f"WAV audio is {frames / fmt.sample_rate:.1f} s, over {max_seconds} s")
    body = body[: frames * fmt.block_align]
    if fmt.format_tag == _PCM and fmt.bits_per_sample == 16 and fmt.channels == 1:
        return bytes(body), fmt.sample_rate
    mono = _to_float(fmt, body).reshape(frames, fmt.channels).mean(axis=1)
    return float32_to_pcm16(mono), fmt.sample_rate


def write_wav(pcm: bytes, sample_rate: int) -> bytes:
    """A 16-bit mono PCM WAV file holding ``pcm`` (PCM s16le mono)."""
    pcm16_samples(pcm)  # rejects odd byte counts before anything is written
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm)
    return buffer.getvalue()
