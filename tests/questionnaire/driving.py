"""Helpers that drive the dialog machine with events and collect its actions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from hana_voice.questionnaire.dialog import (
    Action,
    Channel,
    Event,
    NoResponse,
    PromptPlayed,
    Speak,
    start,
    step,
)
from hana_voice.questionnaire.template import Questionnaire

A = TypeVar("A")


class Call:
    """One call through the machine, keeping every action it returned."""

    def __init__(
        self,
        questionnaire: Questionnaire,
        channel: Channel = "telephony",
        context: Mapping[str, Any] | None = None,
        started_at: datetime | None = None,
    ) -> None:
        self.state, actions = start(questionnaire, channel, context=context, started_at=started_at)
        self.actions: list[Action] = list(actions)

    def send(self, *events: Event) -> list[Action]:
        new: list[Action] = []
        for event in events:
            self.state, actions = step(self.state, event)
            new.extend(actions)
        self.actions.extend(new)
        return new

    def played(self) -> list[Action]:
        return self.send(PromptPlayed(self.state.prompt_id))

    def silence(self) -> list[Action]:
        return self.send(NoResponse(self.state.prompt_id))

    @property
    def last_speak(self) -> Speak:
        return of(Speak, self.actions)[-1]


def of(kind: type[A], actions: Iterable[object]) -> list[A]:
    return [a for a in actions if isinstance(a, kind)]
