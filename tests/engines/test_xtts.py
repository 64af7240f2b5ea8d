"""The XTTS v2 engine on a tiny random-weight checkpoint (tests/engines/xtts_tiny.py).

The checkpoint is written at session start in the guide's layout and loaded through the same
``load_xtts`` a released model takes. Random weights make noise, so these tests check the
plumbing (files, voices, streaming, PCM format, the lock, offline loading), not the speech.
CI has torch: bin/test runs bin/install-xtts, so a missing torch fails this module.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trio

try:
    import soundfile
    import torch
    from TTS.tts.models.xtts import Xtts  # proves the extra imports
except ImportError as exc:  # fail, never skip: CI must test XTTS
    raise ImportError(
        f"XTTS tests need torch and the xtts extra ({exc}); run bin/install-xtts"
    ) from exc

from hana_voice.engines.async_engines import synthesize_stream
from hana_voice.engines.runner import EngineRunner
from hana_voice.engines.xtts_tts import (
    OUTPUT_RATE,
    XttsTextToSpeech,
    check_xtts_dir,
    load_xtts,
    normalize_text,
    resolve_xtts_dir,
    split_sentences,
)
from hana_voice.errors import EngineError, EngineUnavailable, ModelMissingError
from hana_voice.settings import DEFAULT_TTS_MODEL
from tests.engines.xtts_tiny import TINY_SPEAKER, write_tiny_xtts

pytestmark = pytest.mark.slow

GREETING = "مرحبا، كيف حالك اليوم؟"
#: Two GPT steps per chunk, so the tiny model's few audio codes still stream as several chunks.
CHUNK_STEPS = 2


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    write_tiny_xtts(resolve_xtts_dir(DEFAULT_TTS_MODEL, root))
    return root


@pytest.fixture(scope="session")
def xtts_dir(models_dir: Path) -> Path:
    return resolve_xtts_dir(DEFAULT_TTS_MODEL, models_dir)


@pytest.fixture(scope="session")
def reference_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two seconds of a voice-like buzz at 16 kHz, so loading resamples it."""
    rate = 16000
    t = np.arange(rate * 2) / rate
    buzz = 0.3 * np.sign(np.sin(2 * np.pi * 140 * t)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    path = tmp_path_factory.mktemp("voice") / "reference.wav"
    soundfile.write(str(path), buzz.astype(np.float32), rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="session")
def builtin_tts(xtts_dir: Path) -> XttsTextToSpeech:
    return load_xtts(xtts_dir, "cpu", None, TINY_SPEAKER, stream_chunk_size=CHUNK_STEPS)


class StreamSpy:
    """Wraps ``model.inference_stream``: records sentences and how many run at once."""

    def __init__(self, model: Any) -> None:
        self.inner = model.inference_stream
        self.sentences: list[str] = []
        self.active = 0
        self.most_active = 0
        self._lock = threading.Lock()

    def __call__(self, text: str, *args: Any, **kwargs: Any) -> Iterator[Any]:
        self.sentences.append(text)
        with self._lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            yield from self.inner(text, *args, **kwargs)
        finally:
            with self._lock:
                self.active -= 1


@pytest.fixture
def spy(builtin_tts: XttsTextToSpeech, monkeypatch: pytest.MonkeyPatch) -> StreamSpy:
    stream_spy = StreamSpy(builtin_tts.model)
    monkeypatch.setattr(builtin_tts.model, "inference_stream", stream_spy)
    return stream_spy


def assert_pcm(chunks: list[bytes]) -> None:
    assert chunks, "no audio"
    assert all(len(chunk) > 0 and len(chunk) % 2 == 0 for chunk in chunks)
    samples = np.frombuffer(b"".join(chunks), dtype="<i2")
    assert np.any(samples != 0)


def test_model_name_resolves_to_the_guide_layout(tmp_path: Path, xtts_dir: Path) -> None:
    expected = tmp_path / "tts" / "tts_models--multilingual--multi-dataset--xtts_v2"
    assert resolve_xtts_dir(DEFAULT_TTS_MODEL, tmp_path) == expected
    assert resolve_xtts_dir(str(xtts_dir), tmp_path) == xtts_dir
    check_xtts_dir(xtts_dir)


def test_missing_directory_is_named(tmp_path: Path) -> None:
    absent = tmp_path / "nowhere"
    with pytest.raises(ModelMissingError, match=r"nowhere.*does not exist"):
        load_xtts(absent, "cpu", None, None)


@pytest.mark.parametrize("lacking", ["config.json", "model.pth", "vocab.json"])
def test_missing_files_are_named(tmp_path: Path, lacking: str) -> None:
    for name in ("config.json", "model.pth", "vocab.json"):
        if name != lacking:
            (tmp_path / name).write_text("{}")
    with pytest.raises(ModelMissingError) as caught:
        load_xtts(tmp_path, "cpu", None, None)
    assert str(tmp_path) in str(caught.value)
    assert f"lacks {lacking}" in str(caught.value)


def test_extra_not_installed_says_how_to_install(
    xtts_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "TTS.tts.models.xtts", None)
    with pytest.raises(EngineUnavailable, match="bin/install-xtts"):
        load_xtts(xtts_dir, "cpu", None, None)


def test_cuda_without_a_gpu_is_refused(xtts_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(EngineUnavailable, match="TTS_DEVICE=cuda"):
        load_xtts(xtts_dir, "cuda", None, None)


def test_streams_arabic_as_24khz_pcm(builtin_tts: XttsTextToSpeech, spy: StreamSpy) -> None:
    assert builtin_tts.sample_rate == OUTPUT_RATE == 24000
    assert builtin_tts.voice == TINY_SPEAKER
    chunks = list(builtin_tts.synthesize(GREETING))
    assert_pcm(chunks)
    assert spy.sentences == [GREETING]


def test_builtin_speaker_latents_are_loaded_once(builtin_tts: XttsTextToSpeech) -> None:
    list(builtin_tts.synthesize("شكرا"))
    assert builtin_tts.conditioning_computations == 1


def test_unknown_builtin_speaker_is_refused(builtin_tts: XttsTextToSpeech) -> None:
    other = XttsTextToSpeech(builtin_tts.model, device="cpu", speaker="Nobody")
    with pytest.raises(EngineError, match="'Nobody' is not a built-in XTTS voice"):
        other.warm()


def test_reference_wav_voice_is_computed_once(
    xtts_dir: Path, reference_wav: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    for method in ("get_gpt_cond_latents", "get_speaker_embedding"):
        original = getattr(Xtts, method)

        def counted(self: Any, *args: Any, _o: Any = original, _m: str = method, **kw: Any) -> Any:
            calls.append(_m)
            return _o(self, *args, **kw)

        monkeypatch.setattr(Xtts, method, counted)
    tts = load_xtts(xtts_dir, "cpu", reference_wav, None, stream_chunk_size=CHUNK_STEPS)
    assert tts.voice == "reference.wav"
    assert sorted(calls) == ["get_gpt_cond_latents", "get_speaker_embedding"]
    assert_pcm(list(tts.synthesize("نعم")))
    assert_pcm(list(tts.synthesize("لا")))
    assert tts.conditioning_computations == 1
    assert len(calls) == 2


def test_digits_reach_the_model_as_ascii(builtin_tts: XttsTextToSpeech, spy: StreamSpy) -> None:
    list(builtin_tts.synthesize("موعدك يوم ٣ الساعة ۱۰"))
    assert spy.sentences == ["موعدك يوم 3 الساعة 10"]


def test_digit_normalisation() -> None:
    assert normalize_text("الساعة ١٠:٣٠ يوم ۲") == "الساعة 10:30 يوم 2"
    assert normalize_text("٣٫٥ ملغ و ١٢٬٠٠٠ ريال و ٥٠٪") == "3.5 ملغ و 12000 ريال و 50%"
    assert normalize_text("رقم الجوال ٠٥٠١٢٣٤٥٦٧") == "رقم الجوال 0 5 0 1 2 3 4 5 6 7"
    assert normalize_text("١٢٬٠٠٠٬٠٠٠") == "12000000"
    assert normalize_text("سنة 2024") == "سنة 2024"


def test_long_text_is_split_under_the_limit() -> None:
    sentence = "هل تناولت الدواء في موعده بعد الخروج من المستشفى؟"
    text = " ".join([sentence] * 8) + " " + "كلمة " * 60
    pieces = split_sentences(text, 166)
    assert len(pieces) > 1
    assert all(0 < len(piece) <= 166 for piece in pieces)
    assert " ".join(pieces).split() == text.split()
    assert split_sentences("  \n ") == []


def test_long_text_streams_sentence_by_sentence(
    builtin_tts: XttsTextToSpeech, spy: StreamSpy
) -> None:
    text = "شكرا لك. " * 30
    stream = builtin_tts.synthesize(text)
    assert next(stream)
    stream.close()
    assert len(spy.sentences) == 1 and len(spy.sentences[0]) <= builtin_tts.char_limit
    assert builtin_tts.char_limit == 166


def test_two_threads_are_served_one_at_a_time(
    builtin_tts: XttsTextToSpeech, spy: StreamSpy
) -> None:
    results: dict[str, list[bytes]] = {}

    def speak(name: str) -> None:
        results[name] = list(builtin_tts.synthesize(GREETING))

    threads = [threading.Thread(target=speak, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert_pcm(results["a"])
    assert_pcm(results["b"])
    assert len(spy.sentences) == 2
    assert spy.most_active == 1


def test_closing_the_stream_early_releases_the_lock(
    builtin_tts: XttsTextToSpeech, spy: StreamSpy
) -> None:
    stream = builtin_tts.synthesize(GREETING)
    assert next(stream)
    assert builtin_tts._lock.locked()
    stream.close()
    assert not builtin_tts._lock.locked()
    assert spy.active == 0


async def test_barge_in_through_the_runner_releases_the_lock(
    builtin_tts: XttsTextToSpeech,
) -> None:
    runner = EngineRunner(trio.CapacityLimiter(2), timeout=60)
    with trio.fail_after(120):
        async with synthesize_stream(builtin_tts, runner, GREETING) as chunks:
            async for chunk in chunks:
                assert chunk
                break  # the caller barged in
        while builtin_tts._lock.locked():  # the worker thread closes the generator itself
            await trio.sleep(0.05)
    assert_pcm(list(builtin_tts.synthesize("نعم")))


def test_loads_and_speaks_without_the_network(
    xtts_dir: Path, reference_wav: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[str] = []

    def refuse(what: str) -> Any:
        def blocked(*args: Any, **kwargs: Any) -> Any:
            attempts.append(what)
            raise OSError(f"network access attempted: {what}")

        return blocked

    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("connect_ex"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    tts = load_xtts(xtts_dir, "cpu", reference_wav, None, stream_chunk_size=CHUNK_STEPS)
    assert_pcm(list(tts.synthesize(GREETING)))
    assert attempts == []
    assert os.environ["HF_HUB_OFFLINE"] == os.environ["TRANSFORMERS_OFFLINE"] == "1"
