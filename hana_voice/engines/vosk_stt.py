"""The Vosk (Kaldi) speech recogniser: one model per process, one recogniser per call.

:func:`load_vosk` checks the model directory's layout first (so a missing or half-copied model
gives a :class:`ModelMissingError` naming the path and the missing parts, rather than Vosk's
bare ``Exception("Failed to create a model")``), then loads the model; it takes seconds and
hundreds of MB, so call it once, in a thread. Recognisers are created per call, in a thread,
at the rate of the call's audio: Kaldi resamples to the model's rate itself.

Grammar mode restricts recognition to a list of phrases (the answers a question expects),
which makes short answers robust on noisy telephone audio. Only models with a dynamic graph
(``graph/HCLr.fst`` + ``graph/Gr.fst``) support it; with a static ``graph/HCLG.fst`` phrases
are ignored, logged once, and recognition stays free.

Cancellation: a Vosk call cannot be interrupted. A cancelled or timed-out call keeps running
in its abandoned worker thread until it returns; :class:`VoskRecognizer` is not thread-safe, so
its users (:mod:`hana_voice.engines.async_engines`) serialise calls and free it with
:class:`hana_voice.engines.runner.ThreadBusy` only once no thread uses it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import vosk

from hana_voice.errors import EngineError, ModelMissingError
from hana_voice.events import Transcript, Word

log = logging.getLogger(__name__)

#: Files every model needs, relative to the model directory.
REQUIRED_FILES = ("am/final.mdl", "conf/mfcc.conf", "conf/model.conf")
#: Files an ``ivector/`` directory needs when the model has one.
IVECTOR_FILES = (
    "ivector/final.dubm",
    "ivector/final.ie",
    "ivector/final.mat",
    "ivector/global_cmvn.stats",
    "ivector/online_cmvn.conf",
    "ivector/splice.conf",
)
#: Vosk's filler for speech outside the grammar, where the model's vocabulary has it.
UNKNOWN_WORD = "[unk]"


@dataclass(frozen=True)
class ModelLayout:
    """What the model directory holds, as far as the adapter cares."""

    path: Path
    supports_grammar: bool


def check_model_dir(path: Path) -> ModelLayout:
    """Check a Vosk model directory; raise ModelMissingError naming what is missing."""
    if not path.is_dir():
        raise ModelMissingError(
            f"Vosk model directory {path} does not exist; set VOSK_MODEL_PATH to an unpacked "
            "Vosk model (with am/, conf/ and graph/)"
        )
    missing = [name for name in REQUIRED_FILES if not _present(path / name)]
    if (path / "ivector").is_dir():
        missing += [name for name in IVECTOR_FILES if not _present(path / name)]
    graph = path / "graph"
    dynamic = _present(graph / "HCLr.fst") and _present(graph / "Gr.fst")
    if not dynamic and not _present(graph / "HCLG.fst"):
        missing.append("graph/HCLG.fst (or graph/HCLr.fst with graph/Gr.fst)")
    if missing:
        raise ModelMissingError(
            f"Vosk model directory {path} is incomplete, missing or empty: "
            + ", ".join(missing)
            + "; the download or copy was probably cut short, fetch the model again"
        )
    return ModelLayout(path, supports_grammar=dynamic)


def _present(file: Path) -> bool:
    """A file that exists and is not empty (an interrupted copy leaves empty files)."""
    try:
        return file.is_file() and file.stat().st_size > 0
    except OSError:
        return False


class VoskRecognizer:
    """One call's streaming recogniser. Implements ``Recognizer``; one thread at a time."""

    def __init__(self, stt: VoskSpeechToText, sample_rate: int, grammar: str | None) -> None:
        self.sample_rate = sample_rate
        self._stt = stt
        try:
            if grammar is None:
                rec = vosk.KaldiRecognizer(stt.model, float(sample_rate))
            else:
                rec = vosk.KaldiRecognizer(stt.model, float(sample_rate), grammar)
            rec.SetWords(True)
        except Exception as exc:  # vosk raises bare Exception
            raise EngineError(f"Vosk could not create a recogniser at {sample_rate} Hz") from exc
        self._rec: Any = rec

    def _live(self) -> Any:
        if self._rec is None:
            raise EngineError("the recogniser is closed")
        return self._rec

    def accept(self, pcm: bytes) -> Transcript | None:
        rec = self._live()
        try:
            ended = rec.AcceptWaveform(bytes(pcm))
        except Exception as exc:  # vosk raises bare Exception
            raise EngineError("Vosk failed to process audio") from exc
        if ended:
            return _final(rec.Result())
        return None

    def partial(self) -> Transcript:
        text = json.loads(self._live().PartialResult()).get("partial", "")
        return Transcript(text=_without_unknown(text), final=False, confidence=0.0)

    def finish(self) -> Transcript:
        return _final(self._live().FinalResult())

    def set_phrases(self, phrases: Sequence[str] | None) -> None:
        """Switch grammar for the next utterance; ``None`` returns to free recognition."""
        rec = self._live()
        grammar = self._stt.grammar(phrases)
        if not self._stt.supports_grammar:
            return  # recognition stays free; grammar() has logged it once
        # Vosk ignores a new grammar while an utterance is in progress: start a fresh one.
        rec.Reset()
        rec.SetGrammar(grammar if grammar is not None else "[]")

    def close(self) -> None:
        # Dropping the only reference runs KaldiRecognizer.__del__, which frees it; calling
        # vosk_recognizer_free ourselves would free it twice.
        self._rec = None


class VoskSpeechToText:
    """A loaded Vosk model. Implements ``SpeechToText``; create it with :func:`load_vosk`."""

    name = "vosk"

    def __init__(self, model: Any, layout: ModelLayout) -> None:
        self.model = model
        self.path = layout.path
        self.supports_grammar = layout.supports_grammar
        self._has_unknown = model.vosk_model_find_word(UNKNOWN_WORD) >= 0
        self._warned_no_grammar = False

    def grammar(self, phrases: Sequence[str] | None) -> str | None:
        """The JSON grammar for ``phrases``, or None for free recognition (None or empty)."""
        if not phrases:
            return None
        if not self.supports_grammar:
            if not self._warned_no_grammar:
                self._warned_no_grammar = True
                log.warning("Vosk model at %s has a static graph: phrase lists ignored", self.path)
            return None
        words = [w for p in phrases for w in p.split()]
        missing = sum(1 for w in words if self.model.vosk_model_find_word(w) < 0)
        if missing:
            # Count only: the phrases are questionnaire content, kept out of logs.
            log.warning("%d grammar word(s) are not in the Vosk model's vocabulary", missing)
        # An unknown-word branch lets noise come out as nothing instead of a forced answer.
        entries = [*phrases, UNKNOWN_WORD] if self._has_unknown else list(phrases)
        # ensure_ascii=False: Vosk matches the JSON text against its vocabulary literally.
        return json.dumps(entries, ensure_ascii=False)

    def create_recognizer(
        self, sample_rate: int, phrases: Sequence[str] | None = None
    ) -> VoskRecognizer:
        """A new recogniser at the audio's rate (blocking, ~ms to ~100 ms: run in a thread)."""
        return VoskRecognizer(self, sample_rate, self.grammar(phrases))


def load_vosk(path: Path) -> VoskSpeechToText:
    """Check the layout and load the model (blocking, seconds: run it in a thread)."""
    layout = check_model_dir(path)
    vosk.SetLogLevel(-1)
    try:
        model = vosk.Model(str(path))
    except Exception as exc:  # vosk raises bare Exception
        raise ModelMissingError(f"Vosk could not load the model at {path}: {exc}") from exc
    log.info("Vosk model loaded from %s (grammar %s)", path, layout.supports_grammar)
    return VoskSpeechToText(model, layout)


def _without_unknown(text: str) -> str:
    return " ".join(w for w in text.split() if w != UNKNOWN_WORD)


def _final(result_json: str) -> Transcript:
    """A final Transcript from Vosk's result JSON; confidence is the mean word confidence."""
    result = json.loads(result_json)
    words = tuple(
        Word(
            word=str(w["word"]),
            start=float(w["start"]),
            end=float(w["end"]),
            confidence=float(w["conf"]),
        )
        for w in result.get("result", ())
        if w.get("word") != UNKNOWN_WORD
    )
    confidence = sum(w.confidence for w in words) / len(words) if words else 0.0
    return Transcript(
        text=_without_unknown(result.get("text", "")),
        final=True,
        confidence=confidence,
        words=words,
    )
