"""The CLI tests reuse the engine fixtures (the Korean Vosk model and espeak speech)."""

from tests.engines.conftest import korean_speech, korean_voice, vosk_ko

__all__ = ["korean_speech", "korean_voice", "vosk_ko"]
