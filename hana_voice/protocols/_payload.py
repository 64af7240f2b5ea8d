"""Audio payloads as the wire carries them: base64 mu-law, bare PCM s16le and WAV files.

Every failure a peer can cause becomes a non-fatal :class:`ProtocolError` with code
``bad_audio``: one broken chunk costs a few milliseconds of speech, not the call. A failure the
service causes (odd PCM handed to an encoder) becomes a fatal ``internal_error`` with close code
1011, because it is a bug in the session, not in the peer.
"""

from __future__ import annotations

import binascii
import io
import struct
import wave

from hana_voice.audio import mulaw
from hana_voice.audio.wav import write_wav
from hana_voice.errors import ProtocolError

__all__ = [
    "check_outbound_pcm",
    "chunk_samples",
    "decode_base64_mulaw",
    "encode_base64_mulaw_chunks",
    "pcm_from_wire",
    "pcm_to_wire",
    "wav_to_pcm",
]

_SAMPLE_WIDTH = 2


def bad_audio(message: str) -> ProtocolError:
    return ProtocolError(message, code="bad_audio", fatal=False)


def internal(message: str) -> ProtocolError:
    return ProtocolError(message, code="internal_error", close_code=1011, fatal=True)


def check_outbound_pcm(pcm: bytes, sample_rate: int, expected_rate: int | None = None) -> None:
    """Refuse reply audio the session should never produce (odd length, wrong rate)."""
    if len(pcm) % _SAMPLE_WIDTH:
        raise internal(f"outbound PCM has an odd byte count ({len(pcm)})")
    if expected_rate is not None and sample_rate != expected_rate:
        raise internal(
            f"outbound audio is {sample_rate} Hz; this protocol carries {expected_rate} Hz, "
            "resample before sending"
        )


def decode_base64_mulaw(text: object, where: str) -> bytes:
    """PCM s16le of a base64 mu-law payload; ``where`` names the field in error messages."""
    if not isinstance(text, str):
        raise bad_audio(f"{where} must be a base64 string, got {type(text).__name__}")
    try:
        # strict_mode is b64decode(validate=True) without its regular-expression pre-check.
        raw = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        # ValueError: non-ASCII characters in the string.
        raise bad_audio(f"{where} is not valid base64") from None
    return mulaw.decode(raw)


def chunk_samples(chunk_ms: int, sample_rate: int) -> int:
    """Samples in one outbound audio message of ``chunk_ms``; refuses lengths outside 10-100."""
    if not 10 <= chunk_ms <= 100:
        raise ValueError("chunk_ms must be from 10 to 100")
    return sample_rate * chunk_ms // 1000


def encode_base64_mulaw_chunks(pcm: bytes, samples_per_chunk: int) -> list[str]:
    """Base64 mu-law payloads of at most ``samples_per_chunk`` samples each."""
    codes = mulaw.encode(pcm)
    return [
        binascii.b2a_base64(codes[i : i + samples_per_chunk], newline=False).decode("ascii")
        for i in range(0, len(codes), samples_per_chunk)
    ]


def pcm_from_wire(data: bytes, encoding: str, sample_rate: int) -> bytes:
    """PCM s16le of one binary browser frame in ``encoding`` (pcm_s16le, mulaw or wav)."""
    if encoding == "mulaw":
        return mulaw.decode(data)
    if encoding == "wav":
        pcm, rate = wav_to_pcm(data)
        if rate != sample_rate:
            raise bad_audio(f"WAV frame is {rate} Hz but start declared {sample_rate} Hz")
        return pcm
    if len(data) % _SAMPLE_WIDTH:
        raise bad_audio(f"pcm_s16le frame has an odd byte count ({len(data)}); 16-bit samples")
    return data


def pcm_to_wire(pcm: bytes, encoding: str, sample_rate: int) -> bytes:
    """One binary frame of reply audio in ``encoding`` (pcm_s16le, mulaw or wav)."""
    if encoding == "mulaw":
        return mulaw.encode(pcm)
    if encoding == "wav":
        return write_wav(pcm, sample_rate)
    return pcm


def wav_to_pcm(data: bytes) -> tuple[bytes, int]:
    """PCM s16le and sample rate of a 16-bit mono PCM WAV file."""
    try:
        with wave.open(io.BytesIO(data), "rb") as reader:
            channels = reader.getnchannels()
            width = reader.getsampwidth()
            rate = reader.getframerate()
            pcm = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError, ValueError, OSError, struct.error) as exc:
        # What the stdlib raises for truncated or foreign files.
        raise bad_audio(f"binary frame is not a readable PCM WAV file: {exc}") from None
    if channels != 1 or width != _SAMPLE_WIDTH:
        raise bad_audio(
            f"WAV must be 16-bit mono, got {channels} channel(s) of {8 * width}-bit samples"
        )
    if len(pcm) % _SAMPLE_WIDTH:
        pcm = pcm[:-1]  # a truncated last sample; the rest of the file is sound
    return pcm, rate
