"""The questionnaire dialog task of a call: drives the pure state machine and does its I/O.

It waits for the call's set-up (which selects the questionnaire), then feeds the machine what
the caller says, keys and hears, and carries out its actions: speak, record each answer in its
own transaction, escalate (Redirect: a transfer on telephony, a message on browsers), hang up.

Answer timers start when a question has been *heard* (PromptPlayed: the mark echo on
telephony), not when it was sent, and restart while the caller is speaking.

The call's outcome (:mod:`hana_voice.questionnaire.outcomes`) is stored once, as the dialog
task ends, in a shielded ``finally``: the dialog's own outcome; if the call ended early
(hang-up, disconnect, shutdown) what the dialog says of a call ending there (``partial`` or
``no_response``); ``failed`` when an error ended it; and an outcome set from outside with
:meth:`Call.set_outcome` (``transfer_failed``) wins over all of these. The answers so far are
always kept. Personal prompts (with the patient's name) are synthesised as the call is set up,
alongside the store's first write, and never cached (:mod:`hana_voice.calls.personal_audio`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Mapping
from datetime import UTC, datetime
from typing import Any

import trio

from hana_voice.calls.call import Call, CallerSpeaking, PromptPlayed
from hana_voice.calls.call_start import refuse_call, wait_for_setup
from hana_voice.calls.personal_audio import PreparedAudio
from hana_voice.errors import StoreError
from hana_voice.events import (
    CallStarted,
    DtmfIn,
    Redirect,
    ResultOut,
    SayRequest,
    TextIn,
    Transcript,
)
from hana_voice.frontend.selection import choose_questionnaire
from hana_voice.frontend.source import TemplateUnavailable
from hana_voice.logs import log_event
from hana_voice.questionnaire import Questionnaire, UnknownQuestionnaire
from hana_voice.questionnaire import dialog as machine
from hana_voice.questionnaire.dialog_messages import (
    Action,
    Escalate,
    Event,
    Expectation,
    Finished,
    KeyPressed,
    NoResponse,
    RecordAnswer,
    Speak,
    TransferDone,
    TransferFailed,
    UserSaid,
)
from hana_voice.questionnaire.dialog_messages import HangUp as DialogHangUp
from hana_voice.questionnaire.dialog_messages import PromptPlayed as DialogPromptPlayed
from hana_voice.questionnaire.outcomes import status_of
from hana_voice.results.billing import deliveries_for
from hana_voice.results.handover import response_for
from hana_voice.results.store import ResultStore
from hana_voice.results.tables import DELIVERIES_KEY
from hana_voice.telephony.control import control_bound

log = logging.getLogger(__name__)

#: Context keys copied into the results' metadata (the front end's fields).
METADATA_KEYS = ("patient_id", "hospital_id", "campaign_id", "call_session_id")


class QuestionnaireRun:
    def __init__(self, call: Call, questionnaire: Questionnaire, setup: CallStarted) -> None:
        self.call = call
        self.questionnaire = questionnaire
        self.setup = setup
        self.store: ResultStore | None = call.services.extras.get("store")
        self.expects: dict[str, Expectation] = {}
        self.waiting_for: Expectation | None = None
        self.waiting_prompt: str | None = None
        self.deadline = math.inf
        self.heard_at: float | None = None
        self.started = time.monotonic()
        self.state: machine.DialogState | None = None
        #: The dialog's own end, once it has one.
        self.result: Finished | None = None
        self.stored = False
        self.failed = False
        #: The escalation reason once the provider took the caller over.
        self.transferred: str | None = None
        #: The results metadata written at the start (its ids decide the billing post).
        self.metadata: dict[str, Any] = {}

    # --------------------------------------------------------------- loop

    async def run(self) -> None:
        settings = self.call.services.settings
        state, actions = machine.start(
            self.questionnaire,
            _channel(self.call),
            context=self.setup.context,
            started_at=datetime.now(UTC),
            zone=settings.callback_timezone,
        )
        self.state = state
        async with trio.open_nursery() as nursery:
            self._prepare(nursery, state, actions)
            await self._begin()
            while True:
                transfer_result = await self._perform(actions)
                if transfer_result is not None:
                    # The machine waits to hear whether the promised transfer happened.
                    state, actions = machine.step(state, transfer_result)
                    self.state = state
                    continue
                if state.ended:
                    break
                event = await self._next_event()
                state, actions = machine.step(state, event) if event is not None else (state, ())
                self.state = state
            nursery.cancel_scope.cancel()  # personal prompts never said need no audio

    def _prepare(
        self, nursery: trio.Nursery, state: machine.DialogState, actions: tuple[Action, ...]
    ) -> None:
        """Start synthesising the personal prompts the call opens with (and, after an
        identity check, the greeting that follows a yes)."""
        tts = self.call.engines.tts
        if tts is None:
            return
        speaks = [a for a in actions if isinstance(a, Speak)]
        if state.phase == "identity":
            _, after_yes = machine.step(state, UserSaid("نعم"))
            speaks += [a for a in after_yes if isinstance(a, Speak)]
        personal = [s.text for s in speaks if s.personal]
        if not personal:
            return
        prepared = self.call.prepared_audio = PreparedAudio()
        for text in personal:
            nursery.start_soon(prepared.prepare, tts, self.call.services.runner, text)

    async def _next_event(self) -> Event | None:
        with trio.move_on_at(self.deadline):
            raw = await self.call.dialog_recv.receive()
            return self._translate(raw)
        # The answer timer ran out.
        prompt, self.deadline = self.waiting_prompt, math.inf
        return NoResponse(prompt) if prompt is not None else None

    def _translate(self, raw: Any) -> Event | None:
        if isinstance(raw, Transcript) and raw.final:
            return UserSaid(raw.text, raw.confidence)
        if isinstance(raw, TextIn):
            return UserSaid(raw.text, 1.0)
        if isinstance(raw, DtmfIn):
            return KeyPressed(raw.digit)
        if isinstance(raw, PromptPlayed):
            self._heard(raw.utterance_id)
            return DialogPromptPlayed(raw.utterance_id)
        if isinstance(raw, CallerSpeaking) and self.waiting_for is not None:
            # Give the caller the full answer time again while they talk.
            self.deadline = trio.current_time() + self.waiting_for.response_timeout
        if isinstance(raw, SayRequest):
            self.call.bump("ignored_say")
        return None

    def _heard(self, prompt_id: str) -> None:
        expectation = self.expects.get(prompt_id)
        if expectation is None:
            return
        self.waiting_for, self.waiting_prompt = expectation, prompt_id
        self.heard_at = time.monotonic()
        self.deadline = trio.current_time() + expectation.response_timeout

    # --------------------------------------------------------------- actions

    async def _perform(self, actions: tuple[Action, ...]) -> TransferDone | TransferFailed | None:
        """Carry out the actions in order; ending the call waits until all are done.

        Returns how a transfer went when the actions asked for one (the machine's next event).
        """
        ending: str | None = None
        hang_up: DialogHangUp | None = None
        transfer_result: TransferDone | TransferFailed | None = None
        for action in actions:
            if isinstance(action, Speak):
                await self._speak(action)
            elif isinstance(action, RecordAnswer):
                await self._record(action)
            elif isinstance(action, Escalate) and action.mode == "transfer":
                transfer_result = await self._transfer(action)
            elif isinstance(action, Escalate):
                await self._escalate(action)
            elif isinstance(action, DialogHangUp):
                hang_up = action  # sent last, after the result
                ending = f"questionnaire ended: {action.reason}"
            elif isinstance(action, Finished):
                await self._finish(action)
                if self.transferred is not None:
                    ending = f"transferred to a person: {self.transferred}"
        if hang_up is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(control_bound(self.call)):
                await self.call.control.hang_up(self.call, hang_up.reason)
        if ending is not None and self.transferred is not None:
            self.call.end_reason = ending  # kept if the provider closes first (Maqsam does)
            await self.call.control.after_transfer(self.call)
        if ending is not None:
            self.call.end(ending)
        return transfer_result

    async def _speak(self, action: Speak) -> None:
        self.waiting_for, self.waiting_prompt, self.deadline = None, None, math.inf
        if action.expects is not None:
            self.expects[action.prompt_id] = action.expects
            self.call.set_phrases([*action.expects.phrases])
        await self.call.say(
            action.text,
            interruptible=action.interruptible,
            # A prompt naming the patient is patient data: never in the prompt cache.
            cacheable=not action.personal,
            utterance_id=action.prompt_id,
        )

    async def _record(self, action: RecordAnswer) -> None:
        if self.store is None:
            return
        elapsed = None if self.heard_at is None else round(time.monotonic() - self.heard_at, 3)
        # Stored (and handed over) in the template's own words: "نعم" rather than "yes".
        question = self.questionnaire.question(action.question_id)
        response = response_for(question, action.response)
        await self._stored(
            "call.answer_not_stored",
            self.store.record_answer(
                self.call.session_id,
                action.question_id,
                action.question_order,
                response,
                action.confidence,
                elapsed,
                action.status,
            ),
        )

    async def _escalate(self, action: Escalate) -> None:
        self.call.bump("escalations")
        await self.call.emit(Redirect(action.message or action.reason))

    async def _transfer(self, action: Escalate) -> TransferDone | TransferFailed:
        """Hand the caller to a person through the provider; say how it went.

        Shielded (and bounded): once the provider has the request, its reaction (Twilio's
        ``stop``, Maqsam closing the socket) must not cancel the request or the results.
        """
        self.call.bump("escalations")
        done = False
        with trio.CancelScope(shield=True), trio.move_on_after(control_bound(self.call)):
            done = await self.call.control.transfer(self.call, action.reason)
        if done:
            self.transferred = action.reason
            return TransferDone()
        self.call.bump("transfers_failed")
        return TransferFailed()

    async def _finish(self, action: Finished) -> None:
        self.result = action
        answers = [
            {
                "question_id": a.question_id,
                "question_order": a.question_order,
                "response": a.response,
                "confidence": round(a.confidence, 3),
                "status": a.status,
            }
            for a in action.answers
            if a.status != "skipped"
        ]
        await self.call.emit(
            ResultOut(
                {
                    "session_id": self.call.session_id,
                    "questionnaire_id": self.questionnaire.id,
                    "outcome": action.outcome,
                    "outcome_detail": dict(action.detail),
                    "reason": action.reason,
                    "answers": answers,
                }
            )
        )

    # --------------------------------------------------------------- results

    async def _begin(self) -> None:
        if self.store is None:
            return
        context = dict(self.setup.context)
        raw_custom = context.get("custom")
        custom: dict[str, Any] = raw_custom if isinstance(raw_custom, dict) else {}
        metadata: dict[str, Any] = {k: context.get(k) or custom.get(k) for k in METADATA_KEYS}
        principal = self.call.principal
        # A bound token's claims (checked against the context at set-up) come first.
        metadata.update({k: v for k, v in principal.metadata(metadata).items() if v})
        metadata["call_context"] = context
        metadata["channel"] = self.call.kind
        metadata["auth"] = principal.method
        # Kept with the call, so that recovery after a crash queues the same deliveries.
        metadata[DELIVERIES_KEY] = list(
            deliveries_for(metadata, self.call.services.settings.billing_status_enabled)
        )
        self.metadata = metadata
        await self._stored(
            "call.start_not_stored",
            self.store.start_call(
                self.call.session_id,
                self.questionnaire.id,
                len(self.questionnaire.questions),
                metadata,
                # Only authenticated calls reach the front end (docs/security.md).
                handover=principal.may_hand_over,
            ),
        )

    def outcome(self) -> tuple[str, Mapping[str, Any]]:
        """The call's one outcome as things stand (see the module's docstring)."""
        if self.call.outcome_override is not None:
            return self.call.outcome_override
        if self.result is not None:
            return self.result.outcome, self.result.detail
        if self.failed:
            return "failed", {}
        if self.state is None:
            return "no_response", {}
        ended = machine.interrupted(self.state)
        return ended.outcome, ended.detail

    async def conclude(self) -> None:
        """Store the call's outcome, once, as the dialog task ends."""
        if self.stored:
            return
        self.stored = True
        outcome, detail = self.outcome()
        self.call.services.metrics.call_outcomes.labels(outcome).inc()
        log_event(log, logging.INFO, "call.outcome", session_id=self.call.session_id,
                  outcome=outcome)  # fmt: skip
        if self.store is None:
            return
        duration = round(time.monotonic() - self.started, 3)
        await self._stored(
            "call.finish_not_stored",
            self.store.finish_call(
                self.call.session_id,
                status_of(outcome),
                duration,
                outcome=outcome,
                outcome_detail=detail,
                deliveries=deliveries_for(
                    self.metadata, self.call.services.settings.billing_status_enabled
                ),
            ),
        )

    async def _stored(self, event: str, write: Awaitable[object]) -> None:
        """Await a results write; a StoreError is logged and the call goes on.

        The store keeps writes it could not make in memory and retries them with the next
        write of the call or at shutdown (docs/results.md), so nothing is dropped here.
        """
        try:
            await write
        except StoreError as exc:
            log_event(log, logging.ERROR, event, session_id=self.call.session_id, code=exc.code)


def _channel(call: Call) -> machine.Channel:
    return "telephony" if call.channel == "telephony" else "browser"


async def questionnaire_dialog(call: Call) -> None:
    setup = await wait_for_setup(call)
    try:
        questionnaire = await choose_questionnaire(call.services, setup)
    except UnknownQuestionnaire as exc:
        await refuse_call(call, exc.code, str(exc), None)
        return
    except TemplateUnavailable as exc:
        await refuse_call(call, exc.code, str(exc), exc.template_id)
        return
    run = QuestionnaireRun(call, questionnaire, setup)
    try:
        await run.run()
    except Exception:
        run.failed = True  # the session turns it into a close with a reason
        raise
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(10):
            await run.conclude()
