"""The questionnaire dialog task of a call: drives the pure state machine and does its I/O.

It waits for the call's set-up (which selects the questionnaire), then feeds the machine what
the caller says, keys and hears, and carries out its actions: speak, record each answer in its
own transaction, escalate (Redirect: a transfer on telephony, a message on browsers), hang up.

Answer timers start when a question has been *heard* (PromptPlayed: the mark echo on
telephony), not when it was sent, and restart while the caller is speaking. If the call ends
early (hang-up, disconnect, shutdown) the answers so far are kept and the call is marked
incomplete, in a shielded ``finally``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable
from typing import Any

import trio

from hana_voice.calls.call import Call, CallerSpeaking, PromptPlayed
from hana_voice.errors import StoreError
from hana_voice.events import (
    CallStarted,
    DtmfIn,
    HangUp,
    Redirect,
    ResultOut,
    SayRequest,
    TextIn,
    Transcript,
)
from hana_voice.logs import log_event
from hana_voice.questionnaire import Questionnaire, UnknownQuestionnaire, select_questionnaire
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
    UserSaid,
)
from hana_voice.questionnaire.dialog_messages import HangUp as DialogHangUp
from hana_voice.questionnaire.dialog_messages import PromptPlayed as DialogPromptPlayed
from hana_voice.results.store import ResultStore

log = logging.getLogger(__name__)

#: Context keys copied into the results' metadata (the front end's fields).
METADATA_KEYS = ("patient_id", "hospital_id", "campaign_id")


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
        self.finished = False
        self.started = time.monotonic()

    # --------------------------------------------------------------- loop

    async def run(self) -> None:
        await self._begin()
        state, actions = machine.start(self.questionnaire, _channel(self.call))
        await self._perform(actions)
        while not state.ended:
            event = await self._next_event()
            if event is None:
                continue
            state, actions = machine.step(state, event)
            await self._perform(actions)

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

    async def _perform(self, actions: tuple[Action, ...]) -> None:
        """Carry out the actions in order; ending the call waits until all are done."""
        ending: str | None = None
        hang_up: DialogHangUp | None = None
        for action in actions:
            if isinstance(action, Speak):
                await self._speak(action)
            elif isinstance(action, RecordAnswer):
                await self._record(action)
            elif isinstance(action, Escalate):
                await self._escalate(action)
                if action.mode == "transfer":
                    ending = f"transferred to a person: {action.reason}"
            elif isinstance(action, DialogHangUp):
                hang_up = action  # sent last, after the result
                ending = f"questionnaire ended: {action.reason}"
            elif isinstance(action, Finished):
                await self._finish(action)
        if hang_up is not None:
            await self.call.emit(HangUp(hang_up.reason))
        if ending is not None:
            self.call.end(ending)

    async def _speak(self, action: Speak) -> None:
        self.waiting_for, self.waiting_prompt, self.deadline = None, None, math.inf
        if action.expects is not None:
            self.expects[action.prompt_id] = action.expects
            self.call.set_phrases([*action.expects.phrases])
        await self.call.say(
            action.text,
            interruptible=action.interruptible,
            cacheable=True,
            utterance_id=action.prompt_id,
        )

    async def _record(self, action: RecordAnswer) -> None:
        if self.store is None:
            return
        elapsed = None if self.heard_at is None else round(time.monotonic() - self.heard_at, 3)
        response = "" if action.response is None else str(action.response)
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

    async def _finish(self, action: Finished) -> None:
        self.finished = True
        await self._store_finish(action.outcome)
        answers = [
            {
                "question_id": a.question_id,
                "question_order": a.question_order,
                "response": a.response,
                "confidence": round(a.confidence, 3),
                "status": a.status,
            }
            for a in action.answers
        ]
        await self.call.emit(
            ResultOut(
                {
                    "session_id": self.call.session_id,
                    "questionnaire_id": self.questionnaire.id,
                    "outcome": action.outcome,
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

    async def _store_finish(self, outcome: str) -> None:
        if self.store is None:
            return
        duration = round(time.monotonic() - self.started, 3)
        await self._stored(
            "call.finish_not_stored",
            self.store.finish_call(self.call.session_id, outcome, duration),
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

    async def ended_early(self) -> None:
        """The call ended before the dialog did: keep what was answered, mark incomplete."""
        if not self.finished:
            self.finished = True
            await self._store_finish("incomplete")


def _channel(call: Call) -> machine.Channel:
    return "telephony" if call.channel == "telephony" else "browser"


async def questionnaire_dialog(call: Call) -> None:
    setup = await _wait_for_setup(call)
    questionnaires = call.services.extras.get("questionnaires", {})
    try:
        questionnaire = select_questionnaire(
            questionnaires,
            setup.questionnaire_id,
            setup.context,
            call.services.settings.default_questionnaire,
        )
    except UnknownQuestionnaire as exc:
        await call.error(exc.code, str(exc))
        call.end("unknown questionnaire", 1008)
        return
    run = QuestionnaireRun(call, questionnaire, setup)
    try:
        await run.run()
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(10):
            await run.ended_early()


async def _wait_for_setup(call: Call) -> CallStarted:
    """Set-up comes first (the codecs put an implicit one before a browser's first message)."""
    while True:
        event = await call.dialog_recv.receive()
        if isinstance(event, CallStarted):
            return event
