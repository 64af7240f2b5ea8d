"""The STT-reading task: caller audio through voice activity detection into the recogniser.

Telephony audio arrives continuously, silence included. The recogniser is fed only while the
caller speaks (plus PRE_ROLL of audio before the detected onset, so the first syllable is not
clipped), and flushed when voice activity ends: silence costs almost no CPU, which is what
lets two cores hold many calls. The same onset drives barge-in.

Voice activity detection runs in the frame reader's task (:meth:`Listener.hear`, synchronous
and cheap: an energy gate before WebRTC's VAD): a frame of silence outside an utterance only
joins the pre-roll and never crosses the channel to this task, which saves a task switch per
frame on a line that is quiet most of the time. Speech, and the frames that start or end it,
cross to :meth:`Listener.run`, which barges in and feeds the recogniser.

Transcripts: partials go to the client (browsers show them; telephony codecs drop them);
finals go to the client and to the dialog.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque

import trio

from hana_voice.audio.vad import VoiceActivityDetector
from hana_voice.calls.call import Call, CallerSpeaking
from hana_voice.calls.player import Player
from hana_voice.engines.async_engines import AsyncRecognizer, create_recognizer
from hana_voice.errors import EngineError
from hana_voice.events import BargeIn, SpeechEnded, SpeechStarted, Transcript, TranscriptOut
from hana_voice.guard.audio import HeardAudio
from hana_voice.logs import log_event

log = logging.getLogger(__name__)

PRE_ROLL = 0.3
#: Audio is handed to the recogniser in pieces of at least this length (fewer thread hops).
FEED_SECONDS = 0.1


class Listener:
    def __init__(self, call: Call, player: Player) -> None:
        self.call = call
        self.player = player
        self.recognizer: AsyncRecognizer | None = None
        self._vad: VoiceActivityDetector | None = None
        self._pre_roll: deque[bytes] = deque()
        self._pre_roll_bytes = 0
        self._pending = bytearray()
        self._stt_unavailable_said = False
        #: The recogniser failed during this utterance: retry with a fresh one at the next.
        self._failed_this_utterance = False
        #: Onset/end flags of heard audio the channel had no room for, sent with the next.
        self._carry_started = False
        self._carry_ended = False

    def hear(self, pcm: bytes, rate: int) -> HeardAudio | None:
        """Run the VAD on one frame (in the reader's task); what the listener task must see.

        ``None``: silence outside an utterance, kept only as pre-roll. Raises AudioError on an
        odd byte count.
        """
        vad = self._vad
        if vad is None or rate != vad.sample_rate:
            vad = self._vad = VoiceActivityDetector(rate)
        was_speaking = vad.speaking
        events = vad.process(pcm)
        started = ended = False
        for event in events:
            if isinstance(event, SpeechStarted):
                started = True
            elif isinstance(event, SpeechEnded):
                ended = True
        started, ended = started or self._carry_started, ended or self._carry_ended
        self._carry_started = self._carry_ended = False
        if not (was_speaking or started or ended):
            self._remember(pcm, rate)
            return None
        if started and self._pre_roll:
            pcm = b"".join(self._pre_roll) + pcm
            self._clear_pre_roll()
        return pcm, rate, started, ended

    def dropped(self, heard: HeardAudio) -> None:
        """The channel was full: the audio is lost, but not the onset or end it carried."""
        self._carry_started = self._carry_started or heard[2]
        self._carry_ended = self._carry_ended or heard[3]

    async def run(self) -> None:
        try:
            async for pcm, rate, started, ended in self.call.audio:
                await self._chunk(pcm, rate, started, ended)
        finally:
            if self.recognizer is not None:
                await self.recognizer.aclose()

    async def _chunk(self, pcm: bytes, rate: int, started: bool, ended: bool) -> None:
        if started:
            await self._speech_started()
        self._pending += pcm
        if ended or len(self._pending) >= FEED_SECONDS * rate * 2:
            await self._feed(rate)
        if ended:
            self.call.speech_ended_at = time.perf_counter()
            await self._flush()

    def _remember(self, pcm: bytes, rate: int) -> None:
        self._pre_roll.append(pcm)
        self._pre_roll_bytes += len(pcm)
        while (
            self._pre_roll and self._pre_roll_bytes - len(self._pre_roll[0]) >= PRE_ROLL * rate * 2
        ):
            self._pre_roll_bytes -= len(self._pre_roll.popleft())

    def _clear_pre_roll(self) -> None:
        self._pre_roll.clear()
        self._pre_roll_bytes = 0

    async def _speech_started(self) -> None:
        call = self.call
        self._failed_this_utterance = False
        call.bump("utterances")
        # Not awaited: a full dialog inbox must not stall the audio path.
        with contextlib.suppress(trio.WouldBlock):
            call.dialog_send.send_nowait(CallerSpeaking())
        if self.player.barge_in() is None and call.channel == "browser":
            # Nothing interruptible is playing: browsers still like to know (UI feedback).
            await call.emit(BargeIn())

    async def _recognizer(self, rate: int) -> AsyncRecognizer | None:
        call = self.call
        if self.recognizer is not None and self.recognizer.sample_rate == rate:
            if call.phrases_changed:
                call.phrases_changed = False
                await self.recognizer.set_phrases(call.phrases)
            return self.recognizer
        stt = call.engines.stt
        if stt is None:
            if not self._stt_unavailable_said:
                self._stt_unavailable_said = True
                state = call.engines.stt_state
                await call.error(
                    "stt_unavailable",
                    f"speech recognition is {state}; use the keypad or typed answers",
                )
            return None
        if self.recognizer is not None:
            await self.recognizer.aclose()
        call.phrases_changed = False
        phrases = call.phrases if stt.supports_grammar else None
        self.recognizer = await create_recognizer(stt, call.services.runner, rate, phrases)
        return self.recognizer

    async def _feed(self, rate: int) -> None:
        if not self._pending:
            return
        pcm = bytes(self._pending)
        self._pending.clear()
        if self._failed_this_utterance:
            return  # one error per utterance, not one per 100 ms of it
        try:
            recognizer = await self._recognizer(rate)
            if recognizer is None:
                return
            started = time.perf_counter()
            transcripts = await recognizer.feed(pcm)
            self.call.bump("stt_busy_seconds", time.perf_counter() - started)
            self.call.bump("stt_audio_seconds", len(pcm) / 2 / rate)
        except EngineError as exc:
            await self._engine_failed(exc)
            return
        for transcript in transcripts:
            await self._transcript(transcript)

    async def _flush(self) -> None:
        if self.recognizer is None:
            return
        try:
            final = await self.recognizer.finish()
        except EngineError as exc:
            await self._engine_failed(exc)
            return
        if final is not None:
            await self._transcript(final)

    async def _engine_failed(self, exc: EngineError) -> None:
        log_event(
            log, logging.WARNING, "call.stt_failed", session_id=self.call.session_id, code=exc.code
        )
        await self.call.error(exc.code, f"speech recognition failed: {exc}")
        self._failed_this_utterance = True
        if self.recognizer is not None:
            await self.recognizer.aclose()
            self.recognizer = None

    async def _transcript(self, transcript: Transcript) -> None:
        if not transcript.text.strip():
            return
        await self.call.emit(TranscriptOut(transcript))
        if transcript.final:
            await self.call.transcript(transcript)
