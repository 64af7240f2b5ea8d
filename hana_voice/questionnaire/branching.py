"""Branching: ``ask_if`` conditions on earlier answers decide whether a question is asked.

A condition names an earlier question and tests its answer::

    {"question": "pain_level", "at_least": 4}
    {"question": "overall_condition", "one_of": ["same", "worse"]}
    {"question": "fever", "equals": "yes"}
    {"all": [..conditions..]}   {"any": [..conditions..]}   (nested freely)

Several tests in one condition must all hold. A question that was not answered (unanswered,
skipped, or not reached) fails every test on it, so a follow-up is asked only after the answer
that calls for it. :mod:`hana_voice.questionnaire.loading` checks conditions when the template
loads: earlier questions only, existing option ids, values of the question's type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

#: What a condition's tests compare against: "yes"/"no"/"uncertain", an option id, a number.
Value = str | int


@dataclass(frozen=True)
class Condition:
    """Tests on the answer to one earlier question; all given tests must hold."""

    question: str
    equals: Value | None = None
    one_of: frozenset[Value] | None = None
    at_least: int | None = None
    at_most: int | None = None

    def holds(self, answers: Mapping[str, Value]) -> bool:
        value = answers.get(self.question)
        if value is None:
            return False
        if self.equals is not None and value != self.equals:
            return False
        if self.one_of is not None and value not in self.one_of:
            return False
        if self.at_least is not None and not (isinstance(value, int) and value >= self.at_least):
            return False
        return not (
            self.at_most is not None and not (isinstance(value, int) and value <= self.at_most)
        )

    def questions(self) -> frozenset[str]:
        return frozenset({self.question})


@dataclass(frozen=True)
class AskIf:
    """All (or any) of its parts hold."""

    mode: Literal["all", "any"]
    parts: tuple[Condition | AskIf, ...]

    def holds(self, answers: Mapping[str, Value]) -> bool:
        results = (part.holds(answers) for part in self.parts)
        return all(results) if self.mode == "all" else any(results)

    def questions(self) -> frozenset[str]:
        return frozenset().union(*(part.questions() for part in self.parts))
