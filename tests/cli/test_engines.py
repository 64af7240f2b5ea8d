"""``hana-voice say`` and ``hana-voice transcribe`` on the real engines, as subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hana_voice.audio.wav import read_wav, write_wav
from tests.engines.conftest import KO_MODEL


def _cli(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hana_voice", *args],
        env={**os.environ, "TTS_ENGINE": "espeak", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_say_writes_arabic_speech(tmp_path: Path) -> None:
    out = tmp_path / "hello.wav"
    done = _cli(["say", "مَرْحَبًا، كَيْفَ حَالُكَ؟", "-o", str(out)])
    assert done.returncode == 0, done.stderr
    pcm, rate = read_wav(out.read_bytes())
    assert rate == 22050
    assert 0.8 < len(pcm) / 2 / rate < 5
    assert "espeak" in done.stderr


@pytest.mark.slow
def test_transcribe_in_grammar_mode(
    tmp_path: Path, korean_speech: Callable[[str, int], bytes]
) -> None:
    wav = tmp_path / "yes.wav"
    wav.write_bytes(write_wav(korean_speech("네", 16000), 16000))
    done = _cli(
        ["transcribe", str(wav), "--phrases", "네,아니요,안녕하세요"], VOSK_MODEL_PATH=str(KO_MODEL)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "네"


def test_transcribe_without_model_says_why(tmp_path: Path) -> None:
    wav = tmp_path / "x.wav"
    wav.write_bytes(write_wav(b"\0\0" * 1600, 16000))
    done = _cli(["transcribe", str(wav)], VOSK_MODEL_PATH=str(tmp_path / "nope"))
    assert done.returncode == 1
    assert "unavailable" in done.stderr
    assert str(tmp_path / "nope") in done.stderr
