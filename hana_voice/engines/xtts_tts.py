"""Coqui XTTS v2 (the maintained ``coqui-tts`` fork), loaded offline from a local directory.

Needs the ``xtts`` extra plus torch and torchaudio; ``bin/install-xtts`` installs them (see
docs/xtts.md). This module imports without them: torch and TTS are imported by
:func:`load_xtts`, which turns their absence into :class:`EngineUnavailable`.

Loading (:func:`load_xtts`, blocking, run in a thread at start-up): the directory must hold
``config.json``, ``model.pth`` and ``vocab.json`` (``speakers_xtts.pth`` is optional; it holds
the built-in voices), else :class:`ModelMissingError` names the path and the missing parts.
Nothing is fetched: HF_HUB_OFFLINE and TRANSFORMERS_OFFLINE are set before TTS is imported.
coqui-tts rewrites a released checkpoint's ``model.pth`` in place on its first load (the old
pickle format); on a read-only directory that rewrite fails and is reported as such.

Voice: a reference WAV (TTS_SPEAKER_WAV, read with soundfile and resampled with soxr, never
through torchaudio's CUDA-linked I/O) or a built-in speaker (TTS_SPEAKER). Its conditioning
latents are computed once per voice and kept in memory.

Synthesis streams: the text is normalised (Arabic-Indic and Persian digits become ASCII so
XTTS spells numbers out in Arabic; long digit runs are read digit by digit), split into
sentences under the tokenizer's Arabic character limit (166), and each sentence goes through
``inference_stream``; every float chunk it yields becomes PCM s16le at 24000 Hz at once.

Concurrency: one XTTS instance keeps per-generation state on its modules, and two threads
generating at once corrupt each other's audio. :meth:`XttsTextToSpeech.synthesize` therefore
holds the instance's ``threading.Lock`` for the whole generation, across its yields: a second
caller blocks (in its worker thread) until the first stream ends. Consume the generator in one
thread and close it when done.

Cancellation: the generator cannot be interrupted inside a model step. Closing it (the runner
does, in its worker thread, when a barge-in leaves :meth:`EngineRunner.stream`) raises
GeneratorExit at the current yield, which closes the XTTS stream and releases the lock; the
chunk being generated at that moment (``stream_chunk_size`` GPT steps plus one decoder pass)
is the most that is spent after a barge-in. A generator that is dropped unclosed releases the
lock when it is garbage-collected, which CPython does at once.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import textwrap
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hana_voice.engines.xtts_paths import resolve_xtts_dir
from hana_voice.errors import EngineError, EngineUnavailable, ModelMissingError

__all__ = [
    "OUTPUT_RATE",
    "XttsTextToSpeech",
    "check_xtts_dir",
    "load_xtts",
    "normalize_text",
    "resolve_xtts_dir",
    "split_sentences",
]

log = logging.getLogger(__name__)

#: XTTS v2 decodes at 24 kHz whatever the reference voice's rate.
OUTPUT_RATE = 24000
#: The rate XTTS computes conditioning latents at.
CONDITIONING_RATE = 22050
LANGUAGE = "ar"
REQUIRED_FILES = ("config.json", "model.pth", "vocab.json")
SPEAKERS_FILE = "speakers_xtts.pth"
#: GPT steps per streamed chunk: smaller starts audio sooner, larger decodes more efficiently.
DEFAULT_STREAM_CHUNK_SIZE = 20
#: XTTS's own Arabic limit (``VoiceBpeTokenizer.char_limits["ar"]``); longer text is truncated.
ARABIC_CHAR_LIMIT = 166
#: Digit runs at least this long (phone numbers, file numbers) are read one digit at a time;
#: shorter ones (times, doses, sums, years) are numbers, which XTTS spells out in Arabic.
DIGIT_BY_DIGIT_FROM = 7

INSTALL_HINT = (
    "install it with bin/install-xtts (or `uv sync --extra xtts` plus torch and torchaudio; "
    "see docs/xtts.md)"
)

_DIGITS: dict[int, str] = {0x0660 + i: str(i) for i in range(10)}  # Arabic-Indic ٠-٩
_DIGITS.update({0x06F0 + i: str(i) for i in range(10)})  # Extended (Persian/Urdu) ۰-۹
_DIGITS.update({0x066B: ".", 0x066A: "%"})  # Arabic decimal separator and percent sign
_THOUSANDS_SEPARATOR = "\u066c"  # removed after digit runs are measured: 12٬000 is a number
_LONG_DIGIT_RUN = re.compile(rf"\d{{{DIGIT_BY_DIGIT_FROM},}}", re.ASCII)
_SENTENCE_END = re.compile(r"(?<=[.!?؟؛;…\n])\s+|\n+")
_CLAUSE_END = re.compile(r"(?<=[،,:])\s+")


def normalize_text(text: str) -> str:
    """ASCII digits for XTTS's number expansion; long digit runs spaced out digit by digit."""
    text = _LONG_DIGIT_RUN.sub(lambda m: " ".join(m.group(0)), text.translate(_DIGITS))
    return text.replace(_THOUSANDS_SEPARATOR, "").strip()


def split_sentences(text: str, limit: int = ARABIC_CHAR_LIMIT) -> list[str]:
    """Sentences merged up to ``limit`` characters; longer ones cut at clauses, then words."""
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        sentence = " ".join(sentence.split())
        if len(sentence) <= limit:
            pieces.append(sentence)
            continue
        for clause in _CLAUSE_END.split(sentence):
            pieces.extend(textwrap.wrap(clause, width=limit, break_on_hyphens=False))
    merged: list[str] = []
    for piece in pieces:
        if not piece:
            continue
        if merged and len(merged[-1]) + 1 + len(piece) <= limit:
            merged[-1] = f"{merged[-1]} {piece}"
        else:
            merged.append(piece)
    return merged


def check_xtts_dir(model_dir: Path) -> None:
    """Raise ModelMissingError naming the directory and the files it lacks."""
    if not model_dir.is_dir():
        raise ModelMissingError(
            f"XTTS model directory {str(model_dir)!r} does not exist; it needs "
            + ", ".join(REQUIRED_FILES)
            + f" (and optionally {SPEAKERS_FILE})"
        )
    missing = [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]
    if missing:
        raise ModelMissingError(
            f"XTTS model directory {str(model_dir)!r} lacks " + ", ".join(missing)
        )


@dataclass(frozen=True)
class Voice:
    """Conditioning for one voice: GPT latents and the decoder's speaker embedding (tensors)."""

    gpt_cond_latent: Any
    speaker_embedding: Any


class XttsTextToSpeech:
    """A loaded XTTS model with one voice. Build with :func:`load_xtts`."""

    name = "xtts"
    sample_rate = OUTPUT_RATE

    def __init__(
        self,
        model: Any,
        *,
        device: str,
        speaker_wav: Path | None = None,
        speaker: str | None = None,
        stream_chunk_size: int = DEFAULT_STREAM_CHUNK_SIZE,
    ) -> None:
        self.model = model
        self.device = device
        self.stream_chunk_size = stream_chunk_size
        self.char_limit = int(model.tokenizer.char_limits.get(LANGUAGE, ARABIC_CHAR_LIMIT))
        self.speaker_wav = speaker_wav
        self.speaker = speaker if speaker_wav is None else None
        if speaker_wav is None and speaker is None:
            self.speaker = self._first_builtin_speaker()
        # A file name or a voice name, never a path with a user's directory in it.
        self.voice = speaker_wav.name if speaker_wav is not None else str(self.speaker)
        #: How many times conditioning latents were computed (once per voice).
        self.conditioning_computations = 0
        self._voices: dict[str, Voice] = {}
        self._lock = threading.Lock()

    def _first_builtin_speaker(self) -> str:
        manager = getattr(self.model, "speaker_manager", None)
        if manager is None or not manager.speakers:
            raise EngineError(
                f"XTTS needs a voice: set TTS_SPEAKER_WAV to a reference WAV, or provide "
                f"{SPEAKERS_FILE} in the model directory and set TTS_SPEAKER"
            )
        return str(next(iter(manager.speakers)))

    def warm(self) -> None:
        """Compute the configured voice's latents now (load does), so no call waits for it."""
        with self._lock:
            self._voice()

    def _voice(self) -> Voice:
        """The configured voice's conditioning, computed on first use. Hold the lock."""
        key = f"wav:{self.speaker_wav}" if self.speaker_wav is not None else f"spk:{self.speaker}"
        voice = self._voices.get(key)
        if voice is None:
            start = time.perf_counter()
            if self.speaker_wav is not None:
                voice = self._voice_from_wav(self.speaker_wav)
            else:
                voice = self._builtin_voice(str(self.speaker))
            self.conditioning_computations += 1
            self._voices[key] = voice
            log.info(
                "xtts.voice_ready voice=%s ms=%.0f",
                self.voice,
                (time.perf_counter() - start) * 1000,
            )
        return voice

    def _builtin_voice(self, speaker: str) -> Voice:
        manager = getattr(self.model, "speaker_manager", None)
        speakers: dict[str, Any] = manager.speakers if manager is not None else {}
        if speaker not in speakers:
            known = ", ".join(sorted(speakers)[:8]) or f"none ({SPEAKERS_FILE} is absent)"
            raise EngineError(
                f"TTS_SPEAKER {speaker!r} is not a built-in XTTS voice; known: {known}"
            )
        entry = speakers[speaker]
        return Voice(
            gpt_cond_latent=entry["gpt_cond_latent"].to(self.device),
            speaker_embedding=entry["speaker_embedding"].to(self.device),
        )

    def _voice_from_wav(self, path: Path) -> Voice:
        import soundfile
        import soxr
        import torch

        config = self.model.config
        try:
            samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        except (OSError, RuntimeError) as exc:  # soundfile.LibsndfileError is a RuntimeError
            raise EngineError(f"TTS_SPEAKER_WAV {path.name!r} cannot be read: {exc}") from exc
        mono = samples.mean(axis=1)
        if mono.size == 0:
            raise EngineError(f"TTS_SPEAKER_WAV {path.name!r} holds no audio")
        if rate != CONDITIONING_RATE:
            mono = soxr.resample(mono, rate, CONDITIONING_RATE)
        mono = mono[: CONDITIONING_RATE * int(config.max_ref_len)]
        if config.sound_norm_refs and np.abs(mono).max() > 0:
            mono = mono / np.abs(mono).max() * 0.75
        audio = torch.from_numpy(np.ascontiguousarray(mono, dtype=np.float32))[None, :]
        audio = audio.to(self.device)
        try:
            embedding = self.model.get_speaker_embedding(audio, CONDITIONING_RATE)
            latent = self.model.get_gpt_cond_latents(
                audio,
                CONDITIONING_RATE,
                length=int(config.gpt_cond_len),
                chunk_length=int(config.gpt_cond_chunk_len),
            )
        except RuntimeError as exc:  # too short, or a tensor the model cannot take
            raise EngineError(f"TTS_SPEAKER_WAV {path.name!r} is not usable: {exc}") from exc
        return Voice(gpt_cond_latent=latent, speaker_embedding=embedding)

    def synthesize(self, text: str) -> Generator[bytes, None, None]:
        """Yield PCM s16le chunks at 24000 Hz, sentence by sentence, holding the lock throughout.

        See the module docstring for the lock and for what closing the generator early does.
        """
        sentences = split_sentences(normalize_text(text), self.char_limit)
        if not sentences:
            return
        with self._lock:
            voice = self._voice()
            for sentence in sentences:
                yield from self._stream_sentence(sentence, voice)

    def _stream_sentence(self, sentence: str, voice: Voice) -> Iterator[bytes]:
        config = self.model.config
        stream = self.model.inference_stream(
            sentence,
            LANGUAGE,
            voice.gpt_cond_latent,
            voice.speaker_embedding,
            stream_chunk_size=self.stream_chunk_size,
            temperature=config.temperature,
            length_penalty=config.length_penalty,
            repetition_penalty=config.repetition_penalty,
            top_k=config.top_k,
            top_p=config.top_p,
            enable_text_splitting=False,
        )
        try:
            for chunk in stream:
                pcm = _to_pcm(chunk)
                if pcm:
                    yield pcm
        except (RuntimeError, AssertionError, IndexError, ValueError) as exc:
            raise EngineError(f"XTTS synthesis failed: {type(exc).__name__}: {exc}") from exc
        finally:
            stream.close()


def _to_pcm(chunk: Any) -> bytes:
    samples = chunk.detach().float().cpu().numpy().reshape(-1)
    samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
    pcm: bytes = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    return pcm


def _pick_device(device: str, torch: Any) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise EngineUnavailable("TTS_DEVICE=cuda but torch sees no CUDA device (a CPU build?)")
    if device not in ("cpu", "cuda"):
        raise EngineUnavailable(f"TTS_DEVICE={device!r} is not one of auto, cpu, cuda")
    return device


def _import_xtts() -> tuple[Any, Any, Any]:
    # Set before TTS (and transformers, huggingface_hub) are imported: they read these once.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        import torch
        from TTS.tts.configs.xtts_config import XttsConfig
        from TTS.tts.models.xtts import Xtts
    except ImportError as exc:
        raise EngineUnavailable(f"XTTS is not installed ({exc}); {INSTALL_HINT}") from exc
    return torch, XttsConfig, Xtts


def _fold_weight_norm(decoder: Any, torch: Any) -> None:
    """Fold weight norm into the decoder's weights once, as Coqui's HiFi-GAN loader does.

    Otherwise every decoder pass recomputes each weight (about 12% of CPU time). XTTS's
    ``remove_weight_norm`` cannot be used: it expects one on ``conv_pre``, which XTTS lacks.
    """
    parametrize = torch.nn.utils.parametrize
    for module in decoder.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight")


def _writable(model_dir: Path) -> bool:
    return os.access(model_dir, os.W_OK) and os.access(model_dir / "model.pth", os.W_OK)


def load_xtts(
    model_dir: Path,
    device: str = "auto",
    speaker_wav: Path | None = None,
    speaker: str | None = None,
    *,
    stream_chunk_size: int = DEFAULT_STREAM_CHUNK_SIZE,
) -> XttsTextToSpeech:
    """Load XTTS from ``model_dir`` onto ``device`` and compute the voice's latents. Blocking."""
    check_xtts_dir(model_dir)
    torch, xtts_config, xtts = _import_xtts()
    chosen = _pick_device(device, torch)
    start = time.perf_counter()
    if not _writable(model_dir):
        log.warning(
            "xtts.read_only_model_dir: coqui-tts rewrites a released model.pth on first load; "
            "if it needs to, loading fails (see docs/xtts.md)"
        )
    try:
        config = xtts_config()
        config.load_json(str(model_dir / "config.json"))
        model = xtts(config)
        model.load_checkpoint(config, checkpoint_dir=str(model_dir), use_deepspeed=False)
        model.to(chosen)
        model.eval()
        _fold_weight_norm(model.hifigan_decoder.waveform_decoder, torch)
    except PermissionError as exc:
        raise EngineError(_read_only_message(model_dir)) from exc
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise EngineError(_read_only_message(model_dir)) from exc
        raise EngineError(f"XTTS failed to load from {str(model_dir)!r}: {exc}") from exc
    except Exception as exc:  # torch and coqui raise anything; the manager reports "failed"
        raise EngineError(
            f"XTTS failed to load from {str(model_dir)!r}: {type(exc).__name__}: {exc}"
        ) from exc
    engine = XttsTextToSpeech(
        model,
        device=chosen,
        speaker_wav=speaker_wav,
        speaker=speaker,
        stream_chunk_size=stream_chunk_size,
    )
    engine.warm()
    log.info(
        "xtts.loaded device=%s voice=%s ms=%.0f",
        chosen,
        engine.voice,
        (time.perf_counter() - start) * 1000,
    )
    return engine


def _read_only_message(model_dir: Path) -> str:
    return (
        f"XTTS model directory {str(model_dir)!r} is read-only, and coqui-tts must rewrite "
        "model.pth once (released checkpoints use an old pickle format). Make the directory "
        "writable for the first start, or copy it to a writable volume and point "
        "TTS_MODEL_NAME at the copy"
    )
