"""The embedded espeak-ng synthesiser, driven through ctypes.

The library and its data (with the Arabic dictionary) come from the ``espeakng-loader`` wheel,
so nothing is installed system-wide. espeak-ng keeps global state (one voice, one callback,
one set of parameters per process), so every call into it holds :data:`_LIBRARY_LOCK`, and
the library is initialised once per process whichever :class:`EspeakTextToSpeech` asks first.

Streaming: ``espeak_Synth`` is synchronous and hands audio to a callback about every
``buflength`` ms of output. :meth:`EspeakTextToSpeech.synthesize` runs it in a helper thread
that puts each chunk on an unbounded queue and yields them as they arrive, so the first chunk
is out after one callback instead of after the whole text.

Cancellation: closing the generator (the runner does it when a barge-in leaves the stream)
sets a stop flag that the callback reads; it then returns 1, which makes espeak abandon the
text after the chunk in progress, and the generator waits for the helper thread to finish.
A generator that is simply dropped costs nothing either: the helper thread never blocks,
because the queue is unbounded, so it always finishes and releases the lock.
"""

from __future__ import annotations

import ctypes
import logging
import queue
import threading
from collections.abc import Generator
from dataclasses import dataclass

import espeakng_loader

from hana_voice.errors import EngineError

log = logging.getLogger(__name__)

# espeak_AUDIO_OUTPUT: synchronous, audio handed to the callback, no sound device.
AUDIO_OUTPUT_SYNCHRONOUS = 2
POS_CHARACTER = 1
ESPEAK_CHARS_UTF8 = 1
# Without it espeak_Initialize calls exit() when it cannot read its data.
ESPEAK_INITIALIZE_DONT_EXIT = 0x8000
EE_OK = 0
EE_NOT_FOUND = 2
# espeak_PARAMETER
ESPEAK_RATE = 1
ESPEAK_PITCH = 3

#: How much audio espeak collects before each callback. Smaller means an earlier first chunk
#: and more callbacks; 100 ms measured well under the 50 ms first-chunk target.
DEFAULT_BUFFER_MS = 100

#: espeak-ng's native output rate with its standard voices.
NATIVE_RATE = 22050

#: Serialises every call into libespeak-ng: the library's state is global to the process.
_LIBRARY_LOCK = threading.Lock()


class _EspeakEvent(ctypes.Structure):
    """``espeak_EVENT``; only its address is used, but the type keeps ctypes honest."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_void_p),
    ]


_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_EspeakEvent)
)


@dataclass
class _Sink:
    """Where the callback of the synthesis in progress sends its audio."""

    chunks: queue.SimpleQueue[bytes | BaseException | None]
    stop: threading.Event


class _Library:
    """The process's one libespeak-ng, initialised once; use only while holding the lock."""

    def __init__(self, buffer_ms: int) -> None:
        try:
            lib = ctypes.CDLL(espeakng_loader.get_library_path())
            data_path = espeakng_loader.get_data_path()
        except (OSError, RuntimeError) as exc:
            raise EngineError(f"espeak-ng library could not be loaded: {exc}") from None
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        rate = lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS,
            buffer_ms,
            data_path.encode("utf-8"),
            ESPEAK_INITIALIZE_DONT_EXIT,
        )
        if rate <= 0:
            raise EngineError(f"espeak-ng failed to initialise with data at {data_path}")
        self.lib = lib
        self.sample_rate = rate
        self.sink: _Sink | None = None
        # Kept on the instance: ctypes frees a callback's trampoline with its Python object.
        self._callback = _SYNTH_CALLBACK(self._on_audio)
        lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav: ctypes._Pointer[ctypes.c_short], count: int, _events: object) -> int:
        sink = self.sink
        if sink is None or sink.stop.is_set():
            return 1  # abort the text being synthesised
        if count > 0 and wav:
            sink.chunks.put(ctypes.string_at(wav, count * 2))
        return 0


_library: _Library | None = None


def _get_library(buffer_ms: int) -> _Library:
    """The process's library; call with the lock held."""
    global _library
    if _library is None:
        _library = _Library(buffer_ms)
    return _library


class EspeakTextToSpeech:
    """espeak-ng through the ``espeakng-loader`` wheel. Implements ``TextToSpeech``.

    ``rate`` is in words per minute (espeak's default 175), ``pitch`` 0-100 (default 50).
    See the module docstring for streaming and cancellation.
    """

    name = "espeak"

    def __init__(self, voice: str = "ar", *, rate: int = 175, pitch: int = 50) -> None:
        self.voice = voice
        self.rate = rate
        self.pitch = pitch
        self.sample_rate = NATIVE_RATE

    def _select(self, lib: _Library) -> None:
        """Apply this instance's voice and parameters; the lock is held."""
        status = lib.lib.espeak_SetVoiceByName(self.voice.encode("utf-8"))
        if status == EE_NOT_FOUND:
            raise EngineError(f"espeak-ng has no voice named {self.voice!r}")
        if status != EE_OK:
            raise EngineError(f"espeak-ng could not select voice {self.voice!r} ({status})")
        lib.lib.espeak_SetParameter(ESPEAK_RATE, self.rate, 0)
        lib.lib.espeak_SetParameter(ESPEAK_PITCH, self.pitch, 0)

    def check(self) -> None:
        """Load the library and select the voice once, raising EngineError if either fails."""
        with _LIBRARY_LOCK:
            lib = _get_library(DEFAULT_BUFFER_MS)
            self.sample_rate = lib.sample_rate
            self._select(lib)

    def _run(self, text: bytes, sink: _Sink) -> None:
        """Synthesise ``text`` into ``sink``; runs in the helper thread."""
        try:
            with _LIBRARY_LOCK:
                lib = _get_library(DEFAULT_BUFFER_MS)
                self._select(lib)
                lib.sink = sink
                try:
                    status = lib.lib.espeak_Synth(
                        text, len(text) + 1, 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None
                    )
                finally:
                    lib.sink = None
            if status != EE_OK and not sink.stop.is_set():
                raise EngineError(f"espeak-ng synthesis failed ({status})")
            sink.chunks.put(None)
        except EngineError as exc:
            sink.chunks.put(exc)
        except BaseException as exc:  # handed to the consumer: a silent helper would hang it
            sink.chunks.put(EngineError(f"espeak-ng failed: {type(exc).__name__}: {exc}"))

    def synthesize(self, text: str) -> Generator[bytes, None, None]:
        """Yield PCM s16le chunks at ``sample_rate`` as espeak produces them."""
        if not text.strip():
            return
        sink = _Sink(queue.SimpleQueue(), threading.Event())
        helper = threading.Thread(
            target=self._run, args=(text.encode("utf-8"), sink), name="espeak", daemon=True
        )
        helper.start()
        try:
            while True:
                item = sink.chunks.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            sink.stop.set()
            helper.join()


def load_espeak(voice: str = "ar", *, rate: int = 175, pitch: int = 50) -> EspeakTextToSpeech:
    """Load libespeak-ng and check ``voice`` exists; raise EngineError otherwise.

    Fast (a few ms), but it loads a shared library and reads data files: call it in a thread.
    """
    tts = EspeakTextToSpeech(voice, rate=rate, pitch=pitch)
    tts.check()
    log.info("espeak-ng ready: voice %s at %d Hz", voice, tts.sample_rate)
    return tts
