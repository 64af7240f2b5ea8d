"""PCM s16le, the one audio representation between the codecs and the engines.

Helpers here turn bytes into numpy views and back, and convert to and from float32 in
[-1.0, 1.0). The scale is 32768 both ways so that int16 -> float32 -> int16 is exact; floats
outside the range are clipped rather than wrapped, because a wrapped sample is a loud click.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from hana_voice.errors import AudioError

__all__ = [
    "SAMPLE_WIDTH",
    "duration_seconds",
    "float32_to_pcm16",
    "pcm16_samples",
    "pcm16_to_float32",
    "samples_to_pcm16",
    "silence",
]

#: Bytes per PCM s16le sample.
SAMPLE_WIDTH = 2

_SCALE = 32768.0


def pcm16_samples(pcm: bytes | bytearray | memoryview) -> npt.NDArray[np.int16]:
    """A read-only int16 view of PCM s16le bytes (no copy on little-endian hosts).

    Raises :class:`AudioError` when the byte count is odd: half a sample means the stream lost
    its alignment, and guessing would shift every later sample.
    """
    if len(pcm) % SAMPLE_WIDTH:
        raise AudioError(f"PCM s16le needs an even number of bytes, got {len(pcm)}")
    return np.frombuffer(pcm, dtype="<i2").astype(np.int16, copy=False)


def samples_to_pcm16(samples: npt.NDArray[np.int16]) -> bytes:
    """PCM s16le bytes of int16 samples."""
    return samples.astype("<i2", copy=False).tobytes()


def pcm16_to_float32(pcm: bytes | bytearray | memoryview) -> npt.NDArray[np.float32]:
    """Samples scaled to [-1.0, 1.0) as float32."""
    return pcm16_samples(pcm).astype(np.float32) / np.float32(_SCALE)


def float32_to_pcm16(samples: npt.ArrayLike) -> bytes:
    """PCM s16le bytes of float samples in [-1.0, 1.0]; louder samples are clipped, NaN is 0."""
    scaled = np.nan_to_num(np.asarray(samples, dtype=np.float32), nan=0.0) * np.float32(_SCALE)
    clipped = np.clip(np.rint(scaled), -32768, 32767)
    return bytes(clipped.astype("<i2").tobytes())


def duration_seconds(pcm: bytes | bytearray | memoryview, sample_rate: int) -> float:
    """Length of PCM s16le mono audio in seconds."""
    return len(pcm) / (SAMPLE_WIDTH * sample_rate)


def silence(seconds: float, sample_rate: int) -> bytes:
    """PCM s16le mono silence of the given length (rounded to whole samples)."""
    return bytes(SAMPLE_WIDTH * round(seconds * sample_rate))
