"""Call sessions: one call, one nursery (STT reader, dialog, TTS writer) over any wire codec."""
