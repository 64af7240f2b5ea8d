"""Cached prompts at the call's sample rate, resampled once per process instead of per play.

The prompt cache keeps each prompt at the engine's rate (espeak: 22050 Hz). Every telephony
call plays it at 8000 Hz, and resampling a prompt afresh for each of N calls costs N times
what it needs to. :class:`RateCache` keeps the resampled PCM, keyed by the prompt cache's key
and the output rate, in a byte-bounded LRU (only the trio thread touches it).
"""

from __future__ import annotations

from collections import OrderedDict

from hana_voice.audio.resample import resample

__all__ = ["DEFAULT_BYTES", "RateCache"]

#: About 17 minutes of 8 kHz speech: every prompt of several questionnaires.
DEFAULT_BYTES = 16 * 1024 * 1024


class RateCache:
    def __init__(self, max_bytes: int = DEFAULT_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self.used = 0

    def at_rate(self, key: str, pcm: bytes, in_rate: int, out_rate: int) -> bytes:
        """``pcm`` (the prompt ``key`` at ``in_rate``) at ``out_rate``."""
        if in_rate == out_rate:
            return pcm
        entry = (key, out_rate)
        found = self._entries.get(entry)
        if found is not None:
            self._entries.move_to_end(entry)
            return found
        out = resample(pcm, in_rate, out_rate)
        if len(out) <= self.max_bytes:
            self._entries[entry] = out
            self.used += len(out)
            while self.used > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self.used -= len(evicted)
        return out
