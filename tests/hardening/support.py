"""What the hardening tests share: a keypad-driven questionnaire call, waits on the store,
the process's resident memory, and percentiles."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import trio

import hana_voice
from hana_voice.settings import Settings
from tests.calls.helpers import wait_prompt
from tests.wsclient import Client

QUESTIONNAIRE = "/ws/healthcare-questionnaire"
#: Keys answering the shipped questionnaire's keypad questions, in order (after consent).
KEYPAD_ANSWERS: tuple[tuple[str, ...], ...] = (("1",), ("2",), ("3", "#"), ("2",), ("1",), ("1",))
#: The shipped questionnaire's answers once completed: six by keypad, one typed.
ANSWER_COUNT = len(KEYPAD_ANSWERS) + 1


#: The front end's ids (uuids), so that the hand-over passes the pre-checks and is tried.
FRONT_END_CONTEXT = {
    "patient_id": "99999999-8888-7777-6666-555555555555",
    "hospital_id": "11111111-2222-3333-4444-555555555555",
}
FRONT_END_TEMPLATE = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def as_front_end_template(settings: Settings, directory: Path) -> Settings:
    """Settings running the shipped questionnaire under a front-end template id (a uuid)."""
    source = Path(hana_voice.__file__).parent / "questionnaires" / "post_discharge_followup.json"
    data = json.loads(source.read_text(encoding="utf-8"))
    data["id"] = FRONT_END_TEMPLATE
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "front_end.json").write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    return settings.with_overrides(
        questionnaire_dir=directory, default_questionnaire=FRONT_END_TEMPLATE
    )


async def start_and_consent(client: Client, context: dict[str, Any] | None = None) -> str:
    """Read ``ready``, send ``start`` (with ``context`` if given), hear the greeting, consent;
    return the session id."""
    ready = await client.until("ready")
    start: dict[str, Any] = {"type": "start", "sample_rate": 16000}
    if context is not None:
        start["context"] = context
    await client.send_json(start)
    await wait_prompt(client)
    await client.send_json({"type": "dtmf", "digit": "1"})
    session_id: str = ready["session_id"]
    return session_id


async def answer_the_rest(client: Client, answered: int = 0) -> dict[str, Any]:
    """Answer every question after consent and the first ``answered`` ones; return the
    ``result`` message's body."""
    for keys in KEYPAD_ANSWERS[answered:]:
        await wait_prompt(client)
        for key in keys:
            await client.send_json({"type": "dtmf", "digit": key})
    await wait_prompt(client)
    await client.send_json({"type": "text", "text": "لا شيء"})
    result = await client.until("result", timeout=20)
    await client.until("end", timeout=20)
    body: dict[str, Any] = result["result"]
    return body


async def keypad_call(
    client: Client, context: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """A whole questionnaire answered by keypad: (session id, result body)."""
    session_id = await start_and_consent(client, context)
    return session_id, await answer_the_rest(client)


async def settled(store: Any, session_id: str, timeout: float = 10) -> dict[str, Any]:
    """The stored call once it is no longer ``in_progress``."""
    with trio.fail_after(timeout):
        while True:
            call: dict[str, Any] | None = await store.get_call(session_id)
            if call is not None and call["status"] != "in_progress":
                return call
            await trio.sleep(0.05)


def rss_bytes(pid: int | str = "self") -> int:
    """Resident memory of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS line in /proc status")


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]
