"""Hana Voice: an Arabic voice-agent server for healthcare outreach calls."""

__version__ = "1.0.0"
SERVICE_NAME = "hana-voice"
