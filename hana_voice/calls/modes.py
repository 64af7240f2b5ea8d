"""Dialogs of the endpoints that do not run a questionnaire: /ws, /ws/echo and /ws/tts.

Each is an async function of the call that consumes ``call.dialog_recv`` and returns when the
call should end (it usually never does: the caller hangs up).
"""

from __future__ import annotations

import functools
import logging

from hana_voice.audio.decode import decode_utterance
from hana_voice.calls.call import Call
from hana_voice.engines.async_engines import transcribe
from hana_voice.errors import AudioError, EngineError
from hana_voice.events import SayRequest, TextIn, Transcript, TranscriptOut
from hana_voice.logs import log_event
from hana_voice.protocols.base import UtteranceIn
from hana_voice.protocols.legacy import LegacyCodec

log = logging.getLogger(__name__)

#: The longest legacy utterance decoded (a decompression bomb guard).
MAX_UTTERANCE_SECONDS = 120.0
ECHO_RATE = 16000
#: What the legacy /ws/echo client hears for a recording with no speech in it.
NO_SPEECH = "no speech detected"


async def voice_dialog(call: Call) -> None:
    """/ws: transcripts flow to the client (the listener sends them); say requests speak."""
    async for event in call.dialog_recv:
        if isinstance(event, SayRequest):
            await _speak(call, event)
        elif isinstance(event, TextIn):
            await call.emit(TranscriptOut(Transcript(event.text, final=True)))
        elif isinstance(event, UtteranceIn):
            await _transcribe_whole(call, event)


async def echo_dialog(call: Call) -> None:
    """/ws/echo: speech to text only (streamed, or whole utterances from legacy clients)."""
    async for event in call.dialog_recv:
        if isinstance(event, UtteranceIn):
            await _transcribe_whole(call, event)
        elif isinstance(event, SayRequest):
            await call.error("not_supported", "/ws/echo does speech-to-text only; use /ws/tts")


async def tts_dialog(call: Call) -> None:
    """/ws/tts: text to speech only, sent as fast as it is synthesised."""
    call.paced = False
    async for event in call.dialog_recv:
        if isinstance(event, SayRequest):
            await _speak(call, event)
        elif isinstance(event, UtteranceIn):
            await call.error("not_supported", "/ws/tts does text-to-speech only; use /ws/echo")


async def _speak(call: Call, event: SayRequest) -> None:
    if call.engines.tts is None:
        state = call.engines.tts_state
        await call.error("tts_unavailable", f"speech synthesis is {state}")
        return
    # Free text is not cached: only fixed prompts are worth the disk.
    await call.say(event.text, cacheable=False, utterance_id=event.request_id)


async def _transcribe_whole(call: Call, event: UtteranceIn) -> None:
    """Decode a whole recorded utterance (WebM/Opus, WAV...) and transcribe it."""
    services = call.services
    stt = call.engines.stt
    if stt is None:
        await call.error("stt_unavailable", f"speech recognition is {call.engines.stt_state}")
        return
    try:
        decode = functools.partial(decode_utterance, max_seconds=MAX_UTTERANCE_SECONDS)
        pcm = await services.runner.run(decode, event.data, ECHO_RATE, what="audio decoding")
        if not pcm:
            await call.error("bad_audio", "the recording holds no audio")
            return
        text = await transcribe(stt, services.runner, pcm, ECHO_RATE)
    except AudioError as exc:
        await call.error("bad_audio", str(exc))
        return
    except EngineError as exc:
        log_event(
            log,
            logging.WARNING,
            "call.transcribe_failed",
            session_id=call.session_id,
            code=exc.code,
        )
        await call.error(exc.code, f"speech recognition failed: {exc}")
        return
    if not text.strip() and isinstance(call.codec, LegacyCodec):
        # The voice tester shows "error: ..." lines; an empty transcription would show nothing.
        await call.error("no_speech", NO_SPEECH)
        return
    await call.emit(TranscriptOut(Transcript(text, final=True)))
