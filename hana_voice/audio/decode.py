"""Decode a recorded utterance (browser MediaRecorder WebM/Opus, Ogg, WAV, ...) to PCM s16le.

WAV goes through :mod:`hana_voice.audio.wav` (no ffmpeg needed for the commonest upload);
everything else goes through PyAV, which bundles ffmpeg's demuxers and decoders. The container
is sniffed from its magic bytes so that ffmpeg is told the format instead of guessing from
random-looking data; unknown data is still offered to ffmpeg's probe.

Blocking and CPU-bound (milliseconds per second of Opus): the call session reaches it through
:class:`~hana_voice.engines.runner.EngineRunner` or ``trio.to_thread.run_sync``. It keeps no
global state, so cancellation simply abandons the thread's result.

Every failure, whatever ffmpeg or the container says, leaves as
:class:`~hana_voice.errors.AudioError`. ``max_seconds`` bounds the decoded length, so that a
few kilobytes of crafted Opus cannot expand into gigabytes of PCM.
"""

from __future__ import annotations

import io

import av
import av.error

from hana_voice.audio.resample import resample
from hana_voice.audio.wav import is_wav, read_wav
from hana_voice.errors import AudioError

__all__ = ["DEFAULT_MAX_SECONDS", "decode_utterance", "sniff_container"]

#: A spoken answer is seconds long; a minute leaves room without inviting abuse.
DEFAULT_MAX_SECONDS = 60.0

_EBML_MAGIC = b"\x1a\x45\xdf\xa3"

# ffmpeg raises its own tree (av.error.FFmpegError, a subclass of OSError/ValueError per
# errno), and PyAV adds plain ValueError/IndexError/EOFError for odd containers; all of them
# mean "this is not audio we can read".
_LIBRARY_ERRORS = (av.error.FFmpegError, OSError, ValueError, IndexError, EOFError, KeyError)


def sniff_container(data: bytes) -> str | None:
    """The container named by the magic bytes: "wav", "webm", "ogg", or None if unknown."""
    if is_wav(data):
        return "wav"
    if data.startswith(_EBML_MAGIC):
        return "webm"  # ffmpeg's "matroska,webm" demuxer reads both
    if data.startswith(b"OggS"):
        return "ogg"
    return None


def decode_utterance(
    data: bytes, target_rate: int, *, max_seconds: float = DEFAULT_MAX_SECONDS
) -> bytes:
    """Decode an utterance file to PCM s16le mono at ``target_rate``.

    Raises :class:`AudioError` when the data is empty, unreadable, holds no audio stream, or
    decodes to more than ``max_seconds`` of audio.
    """
    if not data:
        raise AudioError("empty audio")
    container = sniff_container(data)
    if container == "wav":
        pcm, rate = read_wav(data, max_seconds=max_seconds)
        return resample(pcm, rate, target_rate)
    try:
        return _decode_with_ffmpeg(data, container, target_rate, max_seconds)
    except AudioError:
        raise
    except _LIBRARY_ERRORS as error:
        name = container or "unrecognised"
        raise AudioError(f"cannot decode {name} audio: {type(error).__name__}") from error


def _decode_with_ffmpeg(
    data: bytes, container: str | None, target_rate: int, max_seconds: float
) -> bytes:
    fmt = {"webm": "matroska", "ogg": "ogg"}.get(container or "")
    limit = int(max_seconds * target_rate)
    chunks: list[bytes] = []
    produced = 0
    with av.open(io.BytesIO(data), mode="r", format=fmt) as source:
        if not source.streams.audio:
            raise AudioError("the file holds no audio stream")
        stream = source.streams.audio[0]
        converter = av.AudioResampler(format="s16", layout="mono", rate=target_rate)
        for frame in source.decode(stream):
            for converted in converter.resample(frame):
                chunk = _frame_bytes(converted)
                produced += len(chunk) // 2
                if produced > limit:
                    raise AudioError(f"decoded audio runs past {max_seconds} s")
                chunks.append(chunk)
        for converted in converter.resample(None):
            chunks.append(_frame_bytes(converted))
    pcm = b"".join(chunks)
    if not pcm:
        raise AudioError("the file decodes to no audio")
    return pcm[: 2 * limit]


def _frame_bytes(frame: av.AudioFrame) -> bytes:
    # Packed s16 mono: one plane, possibly padded past the frame's samples.
    samples = frame.to_ndarray().reshape(-1)[: frame.samples]
    return samples.astype("<i2", copy=False).tobytes()
