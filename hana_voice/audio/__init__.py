"""Audio codecs and signal processing for calls: pure functions and small stateful streams.

Everything speaks PCM s16le mono ``bytes`` with the sample rate beside it; malformed audio
raises :class:`~hana_voice.errors.AudioError`.

* :mod:`~hana_voice.audio.pcm` - PCM s16le <-> numpy / float32
* :mod:`~hana_voice.audio.mulaw` - G.711 mu-law (telephony media streams)
* :mod:`~hana_voice.audio.wav` - WAV files in, 16-bit mono WAV out
* :mod:`~hana_voice.audio.resample` - one-shot and streaming sample-rate conversion (soxr)
* :mod:`~hana_voice.audio.decode` - recorded utterances (WebM/Opus, Ogg, WAV) via PyAV
* :mod:`~hana_voice.audio.vad` - streaming speech start/end detection (WebRTC VAD + energy gate)
"""

from __future__ import annotations

from hana_voice.audio.decode import decode_utterance
from hana_voice.audio.pcm import float32_to_pcm16, pcm16_samples, pcm16_to_float32
from hana_voice.audio.resample import StreamResampler, resample
from hana_voice.audio.vad import VoiceActivityDetector
from hana_voice.audio.wav import read_wav, write_wav

__all__ = [
    "StreamResampler",
    "VoiceActivityDetector",
    "decode_utterance",
    "float32_to_pcm16",
    "pcm16_samples",
    "pcm16_to_float32",
    "read_wav",
    "resample",
    "write_wav",
]
