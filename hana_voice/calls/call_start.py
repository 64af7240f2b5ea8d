"""The start of a questionnaire call: its set-up (greeting by itself), and refusing it cleanly.

Browser questionnaires greet by themselves: ``start`` is optional (docs/protocol.md), so a
client that sends none hears the greeting right after ``ready``. The dialog waits
START_GRACE_SECONDS for a ``start`` (which sets the audio format and the context) and then
begins with the defaults; a ``start`` sent after that is refused with a non-fatal
``duplicate_start`` error. Telephony calls always wait for their provider's set-up.

A call whose questionnaire cannot be run (unknown id, a front-end template that is
unpublished, malformed, or whose database is unreachable) is refused without a crash: a browser
gets an ``error`` message and close 1008 with the reason; a phone caller hears a short apology
and the call is hung up.
"""

from __future__ import annotations

import logging

import trio

from hana_voice.calls.call import Call, PromptPlayed
from hana_voice.events import CallStarted, HangUp
from hana_voice.logs import log_event
from hana_voice.protocols.browser import BrowserCodec
from hana_voice.questionnaire.selection import UnknownQuestionnaire
from hana_voice.questionnaire.template import Prompt

log = logging.getLogger(__name__)

#: Said to a phone caller whose questionnaire cannot be run, before hanging up.
APOLOGY = Prompt(
    "عذرًا، لا يمكننا إجراء هذه المكالمة الآن بسبب خلل فني. سنتواصل معك لاحقًا، مع السلامة.",
    "عُذْرًا، لَا يُمْكِنُنَا إِجْرَاءُ هَذِهِ المُكَالَمَةِ الآنَ بِسَبَبِ خَلَلٍ فَنِّيّ. سَنَتَوَاصَلُ مَعَكَ لَاحِقًا، مَعَ السَّلَامَة.",
)
#: The longest wait for the apology to be heard (marks echoed) before hanging up anyway.
APOLOGY_WAIT = 15.0
CLOSE_POLICY = 1008
#: The close reason for an unknown questionnaire id (the id itself stays out of it).
UNKNOWN_REASON = "unknown questionnaire"


async def wait_for_setup(call: Call) -> CallStarted:
    """The call's set-up; a browser call without ``start`` begins with the defaults."""
    codec = call.codec
    if call.channel == "browser" and isinstance(codec, BrowserCodec):
        with trio.move_on_after(call.services.settings.start_grace_seconds):
            return await _next_setup(call)
        if codec.started is None:
            setup = codec.start_with_defaults()
            call.setup = setup
            call.out_rate = setup.sample_rate
            return setup
        # A start was read meanwhile: its CallStarted is already in the channel.
    return await _next_setup(call)


async def _next_setup(call: Call) -> CallStarted:
    while True:
        event = await call.dialog_recv.receive()
        if isinstance(event, CallStarted):
            return event


async def refuse_call(call: Call, code: str, reason: str, template_id: str | None) -> None:
    """End a call whose questionnaire cannot run: close 1008 (browser) or apologise, hang up."""
    log_event(
        log,
        logging.WARNING,
        "call.questionnaire_unavailable",
        session_id=call.session_id,
        code=code,
        template_id=template_id,
    )
    if call.channel != "telephony":
        await call.error(code, reason)
        # The close reason is logged: it never echoes an id the client chose (a front-end
        # template id is a validated uuid by now and may stay).
        call.end(UNKNOWN_REASON if code == UnknownQuestionnaire.code else reason, CLOSE_POLICY)
        return
    uid = await call.say(APOLOGY.spoken, interruptible=False, cacheable=True)
    with trio.move_on_after(APOLOGY_WAIT):
        while True:
            event = await call.dialog_recv.receive()
            if isinstance(event, PromptPlayed) and event.utterance_id == uid:
                break
    await call.emit(HangUp(code))
    said = UNKNOWN_REASON if code == UnknownQuestionnaire.code else reason
    call.end(f"questionnaire unavailable: {said}")
