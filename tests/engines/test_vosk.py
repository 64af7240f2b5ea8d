"""The Vosk adapter: model layout checks, and real recognition on the small Korean model.

The Korean model's free-form output varies from run to run, so exact assertions use grammar
mode. The speech is synthesised at test time by espeak-ng's Korean voice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from hana_voice.engines.base import Recognizer
from hana_voice.engines.vosk_stt import (
    ModelLayout,
    VoskSpeechToText,
    check_model_dir,
    load_vosk,
)
from hana_voice.errors import EngineError, ModelMissingError
from hana_voice.events import Transcript

from .conftest import KO_MODEL

Speak = Callable[[str, int], bytes]

#: Words the espeak Korean voice says clearly enough for this small model, in grammar mode.
PHRASES = ["네", "아니요", "안녕하세요"]


def make_model(root: Path, files: list[str]) -> Path:
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
    return root


def recognise(rec: Recognizer, audio: bytes, chunk_ms: int = 100) -> list[Transcript]:
    """Feed audio in chunks as a call would; every final, the flush included when not empty."""
    step = 2 * rec.sample_rate * chunk_ms // 1000
    finals = [t for i in range(0, len(audio), step) if (t := rec.accept(audio[i : i + step]))]
    flushed = rec.finish()
    return finals + ([flushed] if flushed.text else [])


# ---------------------------------------------------------------- layout, no model needed


def test_missing_directory_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelMissingError, match="does not exist") as info:
        load_vosk(missing)
    assert str(missing) in str(info.value)


def test_incomplete_directory_names_the_missing_parts(tmp_path: Path) -> None:
    make_model(tmp_path, ["conf/mfcc.conf", "graph/HCLr.fst"])
    with pytest.raises(ModelMissingError) as info:
        load_vosk(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    for part in ("am/final.mdl", "conf/model.conf", "graph/HCLG.fst"):
        assert part in message
    assert "conf/mfcc.conf" not in message


def test_empty_files_count_as_missing(tmp_path: Path) -> None:
    make_model(tmp_path, ["conf/mfcc.conf", "conf/model.conf", "graph/HCLG.fst"])
    (tmp_path / "am").mkdir()
    (tmp_path / "am/final.mdl").write_bytes(b"")
    with pytest.raises(ModelMissingError, match=r"am/final\.mdl"):
        check_model_dir(tmp_path)


def test_partial_ivector_directory_is_incomplete(tmp_path: Path) -> None:
    base = ["am/final.mdl", "conf/mfcc.conf", "conf/model.conf", "graph/HCLG.fst"]
    make_model(tmp_path, [*base, "ivector/final.ie"])
    with pytest.raises(ModelMissingError, match=r"ivector/final\.mat"):
        check_model_dir(tmp_path)


def test_graph_kind_decides_grammar_support(tmp_path: Path) -> None:
    base = ["am/final.mdl", "conf/mfcc.conf", "conf/model.conf"]
    static = make_model(tmp_path / "static", [*base, "graph/HCLG.fst"])
    dynamic = make_model(tmp_path / "dynamic", [*base, "graph/HCLr.fst", "graph/Gr.fst"])
    assert check_model_dir(static) == ModelLayout(static, supports_grammar=False)
    assert check_model_dir(dynamic) == ModelLayout(dynamic, supports_grammar=True)
    assert check_model_dir(KO_MODEL).supports_grammar


def test_unreadable_model_is_translated(tmp_path: Path) -> None:
    make_model(tmp_path, ["am/final.mdl", "conf/mfcc.conf", "conf/model.conf", "graph/HCLG.fst"])
    with pytest.raises(ModelMissingError, match="could not load"):
        load_vosk(tmp_path)


# ---------------------------------------------------------------- the real Korean model


@pytest.mark.slow
@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("word", PHRASES)
def test_grammar_picks_the_spoken_phrase(
    vosk_ko: VoskSpeechToText, korean_speech: Speak, word: str, rate: int
) -> None:
    rec = vosk_ko.create_recognizer(rate, PHRASES)
    try:
        finals = recognise(rec, korean_speech(word, rate))
    finally:
        rec.close()
    assert [t.text for t in finals] == [word]
    (final,) = finals
    assert final.final
    assert [w.word for w in final.words] == [word]
    assert 0.0 < final.confidence <= 1.0
    assert final.confidence == pytest.approx(final.words[0].confidence)
    assert 0.0 < final.words[0].start < final.words[0].end


@pytest.mark.slow
def test_end_of_utterance_and_partials_while_streaming(
    vosk_ko: VoskSpeechToText, korean_speech: Speak
) -> None:
    rec = vosk_ko.create_recognizer(16000, PHRASES)
    # Kaldi's endpoint rules need up to 2 s of trailing silence after this word.
    audio = korean_speech("안녕하세요", 16000) + bytes(2 * 16000 * 2)
    step = 2 * 16000 // 50  # 20 ms, as a telephony stream sends
    partials: set[str] = set()
    ended: list[Transcript] = []
    for i in range(0, len(audio), step):
        final = rec.accept(audio[i : i + step])
        if final is not None:
            ended.append(final)
        else:
            partials.add(rec.partial().text)
    rec.close()
    # The endpoint (trailing silence) ends the utterance without a flush.
    assert [t.text for t in ended] == ["안녕하세요"]
    assert "안녕하세요" in partials


@pytest.mark.slow
def test_phrases_change_per_utterance_and_lift(
    vosk_ko: VoskSpeechToText, korean_speech: Speak
) -> None:
    rec = vosk_ko.create_recognizer(16000, ["네", "아니요"])
    assert [t.text for t in recognise(rec, korean_speech("아니요", 16000))] == ["아니요"]
    rec.set_phrases(["안녕하세요", "네"])
    assert [t.text for t in recognise(rec, korean_speech("안녕하세요", 16000))] == ["안녕하세요"]
    rec.set_phrases(None)
    free = recognise(rec, korean_speech("안녕하세요", 16000))
    rec.close()
    assert free and all(t.final for t in free)  # free text varies; it only has to come


@pytest.mark.slow
def test_static_graph_model_ignores_phrases_and_logs_once(
    vosk_ko: VoskSpeechToText, caplog: pytest.LogCaptureFixture
) -> None:
    static = VoskSpeechToText(vosk_ko.model, ModelLayout(KO_MODEL, supports_grammar=False))
    with caplog.at_level(logging.WARNING, logger="hana_voice.engines.vosk_stt"):
        first = static.create_recognizer(16000, ["네"])
        second = static.create_recognizer(16000, ["아니요"])
        second.set_phrases(["네"])
    assert static.grammar(["네"]) is None
    assert len([r for r in caplog.records if "static graph" in r.message]) == 1
    first.close()
    second.close()


@pytest.mark.slow
def test_recognisers_work_concurrently_in_threads(
    vosk_ko: VoskSpeechToText, korean_speech: Speak
) -> None:
    jobs = [(w, r) for w in PHRASES for r in (8000, 16000)]
    audio = {job: korean_speech(*job) for job in jobs}
    results: dict[tuple[str, int], list[str]] = {}

    def work(job: tuple[str, int]) -> None:
        rec = vosk_ko.create_recognizer(job[1], PHRASES)
        results[job] = [t.text for t in recognise(rec, audio[job])]
        rec.close()

    threads = [threading.Thread(target=work, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == {job: [job[0]] for job in jobs}


@pytest.mark.slow
def test_closed_recogniser_refuses_calls(vosk_ko: VoskSpeechToText) -> None:
    rec = vosk_ko.create_recognizer(16000)
    rec.close()
    rec.close()  # idempotent
    with pytest.raises(EngineError, match="closed"):
        rec.accept(bytes(320))
