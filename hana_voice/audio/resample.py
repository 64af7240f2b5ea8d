"""Sample-rate conversion with libsoxr.

A call keeps one :class:`StreamResampler` per direction for its whole life: the filter state
carries across chunk boundaries, so 20 ms frames resampled one by one join without the clicks
that resampling each frame on its own leaves at every edge. :func:`resample` is for whole
buffers (a decoded utterance, a cached prompt).

soxr's "HQ" quality (a 20-bit, linear-phase filter) runs far above real time on one core; see
docs/benchmarks/audio.md. The stream delays its output by the filter's group delay (a few
milliseconds), which :meth:`StreamResampler.flush` releases at the end.
"""

from __future__ import annotations

import numpy as np
import soxr

from hana_voice.audio.pcm import pcm16_samples, samples_to_pcm16
from hana_voice.errors import AudioError

__all__ = ["StreamResampler", "resample"]

_QUALITY = "HQ"


def _check_rate(rate: int) -> None:
    if not isinstance(rate, int) or not 1000 <= rate <= 384_000:
        raise AudioError(f"sample rate {rate!r} Hz is out of range (1000-384000)")


def resample(pcm: bytes, in_rate: int, out_rate: int) -> bytes:
    """Resample PCM s16le mono from ``in_rate`` to ``out_rate`` in one go.

    The output holds ``n * out_rate / in_rate`` samples for ``n`` input samples, rounded half up.
    """
    _check_rate(in_rate)
    _check_rate(out_rate)
    samples = pcm16_samples(pcm)
    if in_rate == out_rate or samples.size == 0:
        return bytes(pcm)
    return samples_to_pcm16(soxr.resample(samples, in_rate, out_rate, quality=_QUALITY))


class StreamResampler:
    """Resample a stream of PCM s16le mono chunks of any size.

    Not thread-safe: one call's audio path owns it. When the rates are equal it passes audio
    through untouched.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        _check_rate(in_rate)
        _check_rate(out_rate)
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream: soxr.ResampleStream | None = None
        if in_rate != out_rate:
            self._stream = soxr.ResampleStream(
                in_rate, out_rate, num_channels=1, dtype="int16", quality=_QUALITY
            )
        self._finished = False

    def process(self, pcm: bytes) -> bytes:
        """Resample the next chunk; may return less than its share until the filter fills."""
        if self._finished:
            raise AudioError("resampler used after flush()")
        samples = pcm16_samples(pcm)
        if self._stream is None:
            return bytes(pcm)
        if samples.size == 0:
            return b""
        return samples_to_pcm16(self._stream.resample_chunk(samples))

    def flush(self) -> bytes:
        """Return the audio still held in the filter and end the stream."""
        if self._finished:
            return b""
        self._finished = True
        if self._stream is None:
            return b""
        return samples_to_pcm16(self._stream.resample_chunk(np.zeros(0, np.int16), last=True))
