"""The healthcare questionnaire core: templates, Arabic answer understanding and the dialog.

Pure code (no I/O besides reading template files at start-up, no trio): the call session
drives :func:`start`/:func:`step` and carries out the actions they return.
"""

from hana_voice.questionnaire.dialog import DialogState, start, step
from hana_voice.questionnaire.loading import (
    load_questionnaire,
    load_questionnaires,
    parse_questionnaire,
)
from hana_voice.questionnaire.selection import UnknownQuestionnaire, select_questionnaire
from hana_voice.questionnaire.template import Option, Prompt, Question, Questionnaire
from hana_voice.questionnaire.understanding import Interpretation, expected_phrases, interpret

__all__ = [
    "DialogState",
    "Interpretation",
    "Option",
    "Prompt",
    "Question",
    "Questionnaire",
    "UnknownQuestionnaire",
    "expected_phrases",
    "interpret",
    "load_questionnaire",
    "load_questionnaires",
    "parse_questionnaire",
    "select_questionnaire",
    "start",
    "step",
]
