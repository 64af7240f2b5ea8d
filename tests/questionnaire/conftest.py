"""Fixtures for the questionnaire core: the shipped template and a small built one."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hana_voice.questionnaire import Questionnaire, load_questionnaires, parse_questionnaire
from hana_voice.settings import DEFAULT_QUESTIONNAIRE_DIR

MINIMAL: dict[str, Any] = {
    "id": "mini",
    "version": "1",
    "language": "ar",
    "greeting": "مرحبا، هل تسمح ببعض الأسئلة؟",
    "closing": "شكرا لك",
    "confirm_below": 0.6,
    "escalate_after_unanswered": 2,
    "questions": [
        {"id": "chest", "order": 1, "type": "yes_no", "text": "ألم في الصدر؟",
         "critical": ["yes"], "max_retries": 1},
        {"id": "pain", "order": 2, "type": "rating", "text": "كم الألم؟",
         "critical": {"at_least": 8}, "max_retries": 1},
        {"id": "state", "order": 3, "type": "multiple_choice", "text": "كيف حالك؟",
         "options": [{"id": "better", "text": "أفضل"}, {"id": "same", "text": "نفس الحالة"},
                     {"id": "worse", "text": "أسوأ"}], "critical": ["worse"], "max_retries": 1},
        {"id": "visits", "order": 4, "type": "numeric", "text": "كم مرة؟", "max": 20,
         "max_retries": 1},
        {"id": "notes", "order": 5, "type": "open_text", "text": "ملاحظات؟", "max_retries": 1},
    ],
}  # fmt: skip


def minimal_data() -> dict[str, Any]:
    return copy.deepcopy(MINIMAL)


@pytest.fixture
def mini() -> Questionnaire:
    return parse_questionnaire(minimal_data(), "mini.json")


@pytest.fixture(scope="session")
def shipped() -> Questionnaire:
    return load_questionnaires(DEFAULT_QUESTIONNAIRE_DIR)["post_discharge_followup"]
