"""One call, one nursery: ``run_call`` owns it.

The nursery runs four tasks joined by the bounded channels of :class:`Call`:

- the frame reader: frames -> codec -> events (audio to the listener, the rest to the dialog);
- the listener (STT reader): VAD, barge-in, recogniser, transcripts;
- the dialog: decides what to say next (questionnaire, say requests, echo, TTS only);
- the player (TTS writer): cached or synthesised audio, paced near real time.

A disconnect, a fatal protocol error, the idle timeout, the maximum call length or the
dialog's end cancels the whole scope. Cleanup (freeing the recogniser, recording how the call
ended) runs in ``finally`` blocks, shielded where it must finish.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import trio

from hana_voice.admission import CLOSE_INTERNAL, CLOSE_POLICY, Refused
from hana_voice.calls.call import Call, PromptPlayed
from hana_voice.calls.listener import Listener
from hana_voice.calls.player import Player
from hana_voice.engines.runner import single_exception
from hana_voice.errors import AuthError, HanaError, ProtocolError
from hana_voice.events import AudioIn, CallStarted, DtmfIn, HangUpIn, MarkEcho, TextIn
from hana_voice.logs import log_event
from hana_voice.protocols.base import Frame, InboundEvent
from hana_voice.protocols.legacy import LegacyCodec
from hana_voice.telephony.control import control_bound

log = logging.getLogger(__name__)

#: A dialog is an async function of the call; it returns when the call should end.
Dialog = Callable[[Call], Awaitable[None]]
#: Checks a CallStarted before it is accepted (Maqsam's apiKey); raises AuthError.
SetupCheck = Callable[[Call, CallStarted], Awaitable[None]]


async def run_call(
    call: Call,
    dialog: Dialog,
    *,
    first_frames: list[Frame] | None = None,
    on_setup: SetupCheck | None = None,
    setup_timeout: float | None = None,
) -> None:
    """Run the call until it ends; ``call.end_code``/``end_reason`` say how.

    ``setup_timeout``: the call ends (1008) unless its set-up (which authenticates it) has
    arrived by then; frames before it do not extend the time.
    """
    settings = call.services.settings
    player = Player(call)
    listener = Listener(call, player)
    started = time.perf_counter()
    log_event(
        log,
        logging.INFO,
        "call.start",
        session_id=call.session_id,
        kind=call.kind,
        mode=call.mode,
        endpoint=call.handle.endpoint,
    )
    try:
        try:
            with trio.move_on_after(settings.max_call_seconds) as max_scope, call.scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(listener.run)
                    nursery.start_soon(player.run, nursery)
                    nursery.start_soon(_dialog_then_end, call, dialog)
                    if setup_timeout is not None:
                        nursery.start_soon(_setup_deadline, call, setup_timeout)
                    idle = _IdleWatch(
                        settings.idle_timeout if call.idle_timeout is None else call.idle_timeout
                    )
                    nursery.start_soon(idle.run)
                    await _read_frames(call, player, listener, idle, first_frames or [], on_setup)
                    call.end("caller hung up")  # no-op when the reader already ended the call
        except BaseExceptionGroup as group:
            # One task's error ends the call; handle that error, not the nursery's wrapper.
            raise single_exception(group) from None
        if max_scope.cancelled_caught:
            call.end_reason = f"maximum call length reached ({settings.max_call_seconds:g} s)"
    except ProtocolError as exc:
        call.end_code, call.end_reason = exc.close_code, str(exc)
        log_event(log, logging.INFO, "call.protocol_end", session_id=call.session_id, code=exc.code)
    except HanaError as exc:
        call.end_code, call.end_reason = CLOSE_INTERNAL, f"internal error: {exc.code}"
        log_event(log, logging.ERROR, "call.failed", session_id=call.session_id, code=exc.code)
    except Exception as exc:
        # The top of a call: anything unexpected becomes a clean close with a reason.
        call.end_code, call.end_reason = CLOSE_INTERNAL, "internal error"
        log_event(
            log,
            logging.ERROR,
            "call.crashed",
            session_id=call.session_id,
            exc_type=type(exc).__name__,
            exc_info=True,
        )
    finally:
        # A call ended by anything but its dialog or its caller is ended at the provider too.
        with trio.CancelScope(shield=True), trio.move_on_after(control_bound(call)):
            await call.control.release(call)
        _observe(call)
        stats = {k: round(v, 3) for k, v in call.stats.items()}
        log_event(
            log,
            logging.INFO,
            "call.end",
            session_id=call.session_id,
            kind=call.kind,
            code=call.end_code,
            reason=call.end_reason,
            seconds=round(time.perf_counter() - started, 3),
            stats=stats,
        )


async def _dialog_then_end(call: Call, dialog: Dialog) -> None:
    await dialog(call)
    call.end(call.end_reason if call.end_reason != "call ended" else "dialog finished")


async def _setup_deadline(call: Call, seconds: float) -> None:
    await trio.sleep(seconds)
    if not call.handle.admitted:
        call.end(f"no authenticated set-up within {seconds:g} s", CLOSE_POLICY)


class _IdleWatch:
    """The idle timeout without a cancel scope per frame: the reader stamps each frame's
    arrival, and one task per call checks the stamp when the timeout could have passed."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.last = trio.current_time()
        self.receiving = False
        self.scope = trio.CancelScope()

    async def run(self) -> None:
        while True:
            await trio.sleep_until(self.last + self.seconds)
            now = trio.current_time()
            if not self.receiving:
                self.last = max(self.last, now)  # busy dispatching: not idle
            elif now >= self.last + self.seconds:
                self.scope.cancel()
                return


async def _read_frames(
    call: Call,
    player: Player,
    listener: Listener,
    idle: _IdleWatch,
    first_frames: list[Frame],
    on_setup: SetupCheck | None,
) -> None:
    """Read frames until the peer goes away, hangs up, idles out or breaks the protocol."""
    backlog = list(first_frames)
    receive = call.transport.receive
    max_frame = call.services.settings.max_frame_bytes
    # Legacy whole recordings are bounded by MAX_MESSAGE_BYTES and the decoder instead.
    bounded = not isinstance(call.codec, LegacyCodec)
    with idle.scope:
        while True:
            if backlog:
                frame = backlog.pop(0)
            else:
                idle.receiving = True
                frame = await receive()
                idle.receiving = False
                idle.last = trio.current_time()
            if bounded and len(frame) > max_frame:
                # Refused before decoding: a frame of minutes of audio must not cost the event
                # loop its parsing (issue 11).
                await call.error(
                    "frame_too_large",
                    f"frames are limited to {max_frame} bytes; send audio in frames of 20-100 ms",
                )
                continue
            if await _handle(call, player, listener, frame, on_setup):
                return
    call.end(f"idle timeout: no audio or message for {idle.seconds:g} s")


async def _handle(
    call: Call, player: Player, listener: Listener, frame: Frame, on_setup: SetupCheck | None
) -> bool:
    """Decode and route one frame; True when the call is over."""
    try:
        for event in call.codec.receive(frame):
            if await _dispatch(call, player, listener, event, on_setup):
                return True
    except (AuthError, Refused) as exc:
        # Refused: authenticated, but every session slot is taken (1013).
        call.end(str(exc), exc.close_code)
        return True
    except ProtocolError as exc:
        if exc.fatal:
            call.end(str(exc), exc.close_code)
            return True
        await call.error(exc.code, str(exc))
    return False


async def _dispatch(
    call: Call, player: Player, listener: Listener, event: InboundEvent, on_setup: SetupCheck | None
) -> bool:
    """Route one inbound event; True when the call is over."""
    if isinstance(event, AudioIn):
        # Sliced (at most 100 ms), held to real time, VAD per slice, queued bounded in bytes.
        offered = call.audio.offer(
            event.pcm, event.sample_rate, hear=listener.hear, dropped=listener.dropped
        )
        if offered.over_rate:
            # Faster than real time beyond the burst allowance: dropped, never buffered.
            call.bump("audio_over_rate_seconds", offered.over_rate)
            call.log_limited(logging.WARNING, "call.audio_too_fast")
        if offered.over_queue:
            # The listener fell behind: drop audio rather than grow memory, and say so.
            call.bump("audio_dropped_frames")
            call.log_limited(
                logging.WARNING, "call.falling_behind", dropped=call.stats["audio_dropped_frames"]
            )
        return False
    if isinstance(event, CallStarted):
        if on_setup is not None:
            await on_setup(call, event)
        call.setup = event
        if call.channel == "browser":
            call.out_rate = event.sample_rate
        await call.dialog_send.send(event)
        return False
    if isinstance(event, MarkEcho):
        if player.mark_echoed(event.label):
            await call.dialog_send.send(PromptPlayed(event.label))
        return False
    if isinstance(event, HangUpIn):
        call.end(event.reason)
        return True
    if isinstance(event, DtmfIn | TextIn):
        # A key press (or typed answer) over a prompt interrupts it, as on any IVR.
        player.barge_in()
    await call.dialog_send.send(event)
    return False


def _observe(call: Call) -> None:
    metrics, stats = call.services.metrics, call.stats
    metrics.calls_ended.labels(call.kind, str(call.end_code)).inc()
    metrics.barge_ins.inc(stats.get("barge_ins", 0))
    metrics.dropped_audio.inc(stats.get("audio_dropped_frames", 0))
    audio = stats.get("stt_audio_seconds", 0.0)
    if audio > 0:
        metrics.stt_rtf.observe(stats.get("stt_busy_seconds", 0.0) / audio)
