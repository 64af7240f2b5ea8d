"""Settings, questionnaires and result-store checks shared by the telephony tests."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import trio

from hana_voice.engines.manager import Loaders
from hana_voice.settings import DEFAULT_QUESTIONNAIRE_DIR, Settings
from tests.conftest import RunningServer, run_server
from tests.telephony.peers import CALLER_NUMBER
from tests.telephony.twilio_api import TRANSFER_TO, FakeTwilioApi

MAQSAM_TOKEN = "maqsam-token-0123456789abcdef"
TELEPHONY_TOKEN = "telephony-token-0123456789abcdef"
MAQSAM_PATH = "/ws/maqsam/healthcare"
MAQSAM_AUTH = [("Auth", MAQSAM_TOKEN)]

#: Answers every question by keypad; chosen by the call's custom variables.
KEYPAD_QUESTIONNAIRE = "telephony_keypad_check"
#: One question with the shortest answer time, for answer-timer tests.
QUICK_QUESTIONNAIRE = "telephony_quick_timeout"
#: Two questions, the second one long (to be talked over), with the shortest answer time.
QUICK_PAIR_QUESTIONNAIRE = "telephony_quick_pair"
#: Keys through KEYPAD_QUESTIONNAIRE: consent, yes, no, "1#" (1 could begin 10: # ends it), 1.
KEYPAD_ANSWERS = {
    "greeting": "1",
    "medication": "1",
    "chest_pain": "2",
    "pain_level": "1#",
    "condition": "1",
}
KEYPAD_EXPECTED = {
    "medication": "yes",
    "chest_pain": "no",
    "pain_level": "1",
    "condition": "better",
}
#: A Maqsam campaign's custom variables: the keypad questionnaire, ids, and a phone number
#: that must never reach the results store.
MAQSAM_CUSTOM = {
    "questionnaire_id": KEYPAD_QUESTIONNAIRE,
    "patient_id": "P-1001",
    "hospital_id": "H-7",
    "campaign_id": "C-2025-04",
    "patient_phone": CALLER_NUMBER,
}


def _questionnaire(qid: str, questions: list[dict[str, Any]], timeout: float) -> dict[str, Any]:
    return {
        "id": qid,
        "version": "1",
        "language": "ar",
        "greeting": "مرحبا، هل تسمح لي ببعض الأسئلة؟ اضغط ١ لنعم و٢ لا.",
        "closing": "شكرا لك، مع السلامة.",
        "response_timeout": timeout,
        "max_retries": 1,
        "questions": questions,
    }


def _yes_no(qid: str, order: int, **extra: Any) -> dict[str, Any]:
    return {"id": qid, "order": order, "type": "yes_no", "text": f"سؤال {order}؟"} | extra


def write_questionnaires(directory: Path) -> Path:
    """The shipped questionnaire plus the two test ones, in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for shipped in DEFAULT_QUESTIONNAIRE_DIR.glob("*.json"):
        shutil.copy(shipped, directory / shipped.name)
    keypad = _questionnaire(
        KEYPAD_QUESTIONNAIRE,
        [
            _yes_no("medication", 1),
            _yes_no("chest_pain", 2, critical=["yes"]),
            {"id": "pain_level", "order": 3, "type": "rating", "min": 0, "max": 10,
             "text": "كم درجة الألم؟"},
            {"id": "condition", "order": 4, "type": "multiple_choice", "text": "كيف حالتك؟",
             "options": [{"id": "better", "text": "أفضل"}, {"id": "same", "text": "نفسها"},
                         {"id": "worse", "text": "أسوأ"}],
             "critical": ["worse"]},
        ],
        timeout=8,
    )  # fmt: skip
    quick = _questionnaire(QUICK_QUESTIONNAIRE, [_yes_no("medication", 1)], timeout=1.0)
    long_question = "هل تشعر بألم في الصدر أو ضيق في التنفس منذ خروجك من المستشفى؟"
    pair = _questionnaire(
        QUICK_PAIR_QUESTIONNAIRE,
        [_yes_no("medication", 1), _yes_no("chest_pain", 2, text=long_question)],
        timeout=1.0,
    )
    for data in (keypad, quick, pair):
        (directory / f"{data['id']}.json").write_text(json.dumps(data, ensure_ascii=False))
    return directory


def telephony_settings(settings: Settings, tmp: Path, **changes: Any) -> Settings:
    """Live (fake) engines, both provider tokens, the test questionnaires."""
    values: dict[str, Any] = {
        "skip_model_loading": False,
        "maqsam_token": MAQSAM_TOKEN,
        "telephony_token": TELEPHONY_TOKEN,
        "questionnaire_dir": write_questionnaires(tmp / "questionnaires"),
    }
    values.update(changes)
    return settings.with_overrides(**values)


def twilio_changes(api: FakeTwilioApi, **changes: Any) -> dict[str, Any]:
    """Settings for Twilio's REST API (the fake at ``api``) and signatures; short deadlines."""
    values: dict[str, Any] = {
        "twilio_account_sid": api.account_sid,
        "twilio_auth_token": api.auth_token,
        "twilio_api_url": api.url,
        "twilio_transfer_to": TRANSFER_TO,
        "twilio_api_timeout": 0.5,
    }
    values.update(changes)
    return values


async def engines_ready(server: RunningServer) -> None:
    with trio.fail_after(15):
        await server.services.engines.loaded.wait()


@contextlib.asynccontextmanager
async def telephony_server(
    settings: Settings, tmp: Path, loaders: Loaders, **changes: Any
) -> AsyncIterator[RunningServer]:
    """A server with :func:`telephony_settings` whose engines have loaded."""
    async with run_server(telephony_settings(settings, tmp, **changes), loaders) as server:
        await engines_ready(server)
        yield server


def session_of(database: Path, call_id: str) -> str | None:
    """The session id the server stored for a provider's call id (None: not stored yet)."""
    with contextlib.closing(sqlite3.connect(database)) as conn:
        rows = conn.execute("SELECT session_id, metadata FROM calls").fetchall()
    for session_id, metadata in rows:
        if json.loads(metadata).get("call_context", {}).get("call_id") == call_id:
            return str(session_id)
    return None


async def stored_call(server: RunningServer, call_id: str, *, final: bool = True) -> dict[str, Any]:
    """The stored call of a provider's call id; with ``final``, once it is no longer running."""
    store = server.services.extras["store"]
    database = server.services.settings.database_path
    with trio.fail_after(15):
        while True:
            session_id = await trio.to_thread.run_sync(session_of, database, call_id)
            if session_id is not None:
                call: dict[str, Any] | None = await store.get_call(session_id)
                if call is not None and (not final or call["status"] != "in_progress"):
                    return call
            await trio.sleep(0.05)


async def no_sessions_left(server: RunningServer) -> None:
    """No call leaked: the registry is empty once the clients are gone."""
    with trio.fail_after(10):
        while server.services.registry.live:
            await trio.sleep(0.02)


def answers_of(call: dict[str, Any]) -> dict[str, str]:
    return {a["question_id"]: a["response"] for a in call["answers"]}
