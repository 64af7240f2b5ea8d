"""Telephony providers' side effects: Twilio's request signatures and REST API, call control.

The wire codecs (``hana_voice.protocols.twilio`` / ``maqsam``) stay pure; what needs HTTP, a
clock or a secret lives here and is called by the call session.
"""
