"""A stand-in for the Hana front end's two routes the voice service calls, faithful to them.

``POST /api/responses/submit`` applies every check of ../shared/frontend-contract.md
section 2, in its order, with its status codes and messages, reads the template from the
contract's ``template_versions`` in a real PostgreSQL (tests.frontend.database.load_contract)
and stores a ``template_responses`` row with the route's column types: every value goes in
as text and PostgreSQL casts it, as the front end's database client does, so a fraction
in ``response_time_seconds`` (an integer column) or a patient id that is not a uuid fails
with 500 ``Failed to save template response`` as it does in production.

``POST /api/telephony/call-status`` is section 3: 404 for an unknown session, the session's
status and duration updated, one charge when billable (``completed``, or ``answered`` with a
duration above 0), else 200 ``Call not billable``.

Where the contract gives no message (a missing token, missing fields, a role other than
``voice_service``), the texts here are this file's own; the status codes are the contract's.
Numbers are turned into text as JavaScript prints them (``84.0`` is ``84``), because the
route receives the body through JSON.parse.

``outage`` makes the next requests fail with those statuses before any check (an upstream
proxy or a restarting front end), for retry tests.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
import psycopg
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from psycopg.types.json import Jsonb
from quart import Response, jsonify, request
from quart_trio import QuartTrio

from hana_voice.results.billing import CALL_STATUS_PATH
from hana_voice.results.handover import JWT_ALGORITHM, JWT_ROLE, SUBMIT_PATH


@dataclass
class Arrival:
    """One request as it arrived and how it was answered."""

    path: str
    status: int
    body: Any
    reply: dict[str, Any]
    headers: dict[str, str]


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def js_number_text(value: Any) -> str | None:
    """A JSON value as the text the front end's database client would send for it."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value)


def _is_number(value: Any) -> bool:
    # JavaScript's typeof value === 'number'.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def response_hash(template_id: Any, session_id: Any, answers: list[dict[str, Any]]) -> str:
    """The route's duplicate key: the template, the session and each answer's id/response/order."""
    material = {
        "template_id": template_id,
        "session_id": session_id,
        "answers": [[a["question_id"], a["response"], a["question_order"]] for a in answers],
    }
    text = json.dumps(material, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class FrontEnd:
    database_url: str
    jwt_secret: str
    outage: list[int] = field(default_factory=list)
    arrivals: list[Arrival] = field(default_factory=list)
    #: call_sessions ids charged one token, in order (one entry per charge).
    charges: list[str] = field(default_factory=list)
    url: str = ""
    _arrived: trio.Event = field(default_factory=trio.Event)

    # ------------------------------------------------------------------ waiting

    def to(self, path: str) -> list[Arrival]:
        return [a for a in self.arrivals if a.path == path]

    @property
    def submissions(self) -> list[Arrival]:
        return self.to(SUBMIT_PATH)

    @property
    def status_posts(self) -> list[Arrival]:
        return self.to(CALL_STATUS_PATH)

    async def wait_for(self, path: str, count: int = 1) -> list[Arrival]:
        """Return once ``count`` requests to ``path`` have been answered."""
        while len(self.to(path)) < count:
            await self._arrived.wait()
        return self.to(path)

    def _record(self, path: str, status: int, body: Any, reply: dict[str, Any]) -> None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.arrivals.append(Arrival(path, status, body, reply, headers))
        self._arrived.set()
        self._arrived = trio.Event()

    # ------------------------------------------------------------------ database

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            cursor = conn.execute(sql.encode(), params)
            return cursor.fetchall() if cursor.description is not None else []

    async def _db(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return await trio.to_thread.run_sync(self._query, sql, params)

    # ------------------------------------------------------------------ section 2

    def _claims(self) -> dict[str, Any]:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise _Refused(401, "Missing authorization token")
        try:
            claims: dict[str, Any] = jwt.decode(
                header.removeprefix("Bearer "), self.jwt_secret, [JWT_ALGORITHM]
            )
        except jwt.InvalidTokenError:
            raise _Refused(401, "Invalid authentication token") from None
        return claims

    async def _submit(self, body: Any) -> dict[str, Any]:
        claims = self._claims()
        if not isinstance(body, dict):
            raise _Refused(400, "Missing required fields: template_id, question_count, answers")
        template_id = body.get("template_id")
        question_count = body.get("question_count")
        answers = body.get("answers")
        if not template_id or not question_count or not isinstance(answers, list):
            raise _Refused(400, "Missing required fields: template_id, question_count, answers")
        raw_metadata = body.get("metadata")
        metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
        if claims.get("role") != JWT_ROLE:
            raise _Refused(403, "Only the voice service may submit responses")
        hospital_id = metadata.get("hospital_id")
        if not hospital_id:
            raise _Refused(400, "hospital_id is required for voice service submissions")
        if not _is_uuid(hospital_id) or not await self._db(
            "SELECT 1 FROM hospitals WHERE id = %s::uuid", hospital_id
        ):
            raise _Refused(400, "Invalid hospital_id provided")
        rows = (
            await self._db(
                "SELECT questions_json FROM template_versions"
                " WHERE template_id = %s::uuid AND is_published",
                template_id,
            )
            if _is_uuid(template_id)
            else []
        )
        if not rows:
            raise _Refused(400, "Template not found or not published")
        questions: list[dict[str, Any]] = rows[0][0]
        if question_count != len(questions):
            raise _Refused(
                400,
                f"Question count mismatch: expected {len(questions)}, got {question_count}",
            )
        for answer in answers:
            if not (
                isinstance(answer, dict)
                and isinstance(answer.get("question_id"), str)
                and answer["question_id"]
                and _is_number(answer.get("question_order"))
                # The route's ``!answer.response``: only the empty string is refused.
                and isinstance(answer.get("response"), str)
                and answer["response"] != ""
                and _is_number(answer.get("confidence"))
            ):
                raise _Refused(400, "Invalid answer structure")
        orders = [answer["question_order"] for answer in answers]
        if orders != sorted(orders):
            raise _Refused(400, "Answers must be sorted by question_order")
        known = {str(question.get("id")) for question in questions}
        for answer in answers:
            if answer["question_id"] not in known:
                raise _Refused(400, f"Unknown question ID: {answer['question_id']}")
        return await self._store(body, answers, metadata, len(questions))

    async def _store(
        self,
        body: dict[str, Any],
        answers: list[dict[str, Any]],
        metadata: dict[str, Any],
        question_count: int,
    ) -> dict[str, Any]:
        session_id = metadata.get("session_id")
        completion_rate = round(len(answers) / question_count, 4)
        try:
            rows = await self._db(
                "INSERT INTO template_responses (template_id, patient_id, hospital_id,"
                " campaign_id, call_session_id, response_time_seconds, completion_rate,"
                " answers_json, metadata_json, response_hash)"
                " VALUES (%s::text::uuid, %s::text::uuid, %s::text::uuid, %s::text::uuid,"
                " %s::text::uuid, %s::text::integer, %s::text::numeric, %s, %s, %s)"
                " ON CONFLICT (response_hash) DO NOTHING RETURNING id",
                js_number_text(body["template_id"]),
                js_number_text(metadata.get("patient_id")),
                js_number_text(metadata.get("hospital_id")),
                js_number_text(metadata.get("campaign_id")),
                js_number_text(session_id),
                js_number_text(metadata.get("call_duration_seconds")),
                str(completion_rate),
                Jsonb(answers),
                Jsonb(metadata),
                response_hash(body["template_id"], session_id, answers),
            )
        except psycopg.Error:
            raise _Refused(500, "Failed to save template response") from None
        if not rows:
            return {"success": True, "response_id": None, "message": "Response already recorded"}
        return {
            "success": True,
            "response_id": str(rows[0][0]),
            "message": "Template response submitted successfully",
            "completion_rate": completion_rate,
        }

    # ------------------------------------------------------------------ section 3

    async def _call_status(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not body.get("call_session_id") or not body.get("status"):
            raise _Refused(400, "Missing required fields: call_session_id, status")
        session = body["call_session_id"]
        status = body["status"]
        duration = body.get("duration")
        found = (
            await self._db("SELECT 1 FROM call_sessions WHERE id = %s::uuid", session)
            if _is_uuid(session)
            else []
        )
        if not found:
            raise _Refused(404, "Call session not found")
        billable = status == "completed" or (
            status == "answered" and isinstance(duration, int | float) and duration > 0
        )
        try:
            await self._db(
                "UPDATE call_sessions SET status = %s, duration = %s::text::integer,"
                " billed = billed OR %s, updated_at = now() WHERE id = %s::uuid",
                str(status),
                js_number_text(duration),
                billable,
                session,
            )
        except psycopg.Error:
            raise _Refused(500, "Failed to update call status") from None
        if not billable:
            return {"success": True, "message": "Call not billable"}
        self.charges.append(str(uuid.UUID(session)))
        return {"success": True, "message": "Call billed", "tokens_charged": 1}

    # ------------------------------------------------------------------ the app

    def app(self) -> QuartTrio:
        app = QuartTrio(__name__)

        async def answer(path: str, handler: Any) -> tuple[Response, int]:
            raw = await request.get_data(as_text=True)
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            if self.outage:
                status, reply = self.outage.pop(0), {"error": "Service temporarily unavailable"}
            else:
                try:
                    status, reply = 200, await handler(body)
                except _Refused as refused:
                    status, reply = refused.status, {"error": refused.message}
            self._record(path, status, body, reply)
            return jsonify(reply), status

        @app.post(SUBMIT_PATH)
        async def submit() -> tuple[Response, int]:
            return await answer(SUBMIT_PATH, self._submit)

        @app.post(CALL_STATUS_PATH)
        async def call_status() -> tuple[Response, int]:
            return await answer(CALL_STATUS_PATH, self._call_status)

        return app

    async def serve(self, nursery: trio.Nursery) -> None:
        config = Config()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = None
        config.errorlog = None
        binds = await nursery.start(serve, self.app(), config)
        self.url = binds[0]

    # ------------------------------------------------------------------ what was stored

    def stored_responses(self) -> list[dict[str, Any]]:
        with psycopg.connect(self.database_url) as conn:
            cursor = conn.execute(
                "SELECT template_id::text, patient_id::text, hospital_id::text,"
                " campaign_id::text, call_session_id::text, response_time_seconds,"
                " completion_rate::float8, answers_json, metadata_json, response_hash"
                " FROM template_responses ORDER BY created_at"
            )
            names = [column.name for column in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def call_session(self, session_id: str) -> dict[str, Any] | None:
        with psycopg.connect(self.database_url) as conn:
            cursor = conn.execute(
                "SELECT status, duration, billed FROM call_sessions WHERE id = %s::uuid",
                (session_id,),
            )
            row = cursor.fetchone()
        if row is None:
            return None
        return {"status": row[0], "duration": row[1], "billed": row[2]}
