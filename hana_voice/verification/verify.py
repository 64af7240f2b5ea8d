"""Verify a deployed Hana Voice service from the outside: ``hana-voice verify URL``.

The checks (in :mod:`hana_voice.verification.checks`) run in order: TCP connectivity, GET /,
GET /health with each engine's state, GET /maqsam/status, the handshake time of every
WebSocket endpoint, a text-to-speech round trip on /ws/tts, a speech-to-text round trip on
/ws/echo, and, when credentials are given, a Maqsam handshake and an authenticated /ws/secure
connect. Each is judged against the deployment guide's targets (health under 5 s, WebSocket
connect under 2 s, voice processing under 10 s).

Exit status: 0 when every check passed, 1 when some only warned, were degraded or skipped,
2 when any failed. Secrets go only into request headers; the report never shows them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import trio

from hana_voice.verification import checks
from hana_voice.verification.checks import Check

EXIT_PASSED, EXIT_PARTLY, EXIT_FAILED = 0, 1, 2
_TAGS = {
    "passed": "PASS",
    "warning": "WARN",
    "degraded": "DEGR",
    "skipped": "SKIP",
    "failed": "FAIL",
}


@dataclass
class Report:
    url: str
    checks: list[Check] = field(default_factory=list)
    #: Checks not run, and what would run them.
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        statuses = {check.status for check in self.checks}
        if "failed" in statuses:
            return EXIT_FAILED
        return EXIT_PASSED if statuses <= {"passed"} else EXIT_PARTLY

    @property
    def verdict(self) -> str:
        return {EXIT_PASSED: "passed", EXIT_PARTLY: "partly", EXIT_FAILED: "failed"}[self.exit_code]

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "seconds": round(self.seconds, 3),
            "targets": {
                "health_seconds": checks.HEALTH_TARGET,
                "websocket_connect_seconds": checks.CONNECT_TARGET,
                "voice_processing_seconds": checks.VOICE_TARGET,
            },
            "checks": [check.as_dict() for check in self.checks],
            "not_run": self.notes,
        }

    def text(self) -> str:
        lines = [f"Hana Voice deployment verification: {self.url}", ""]
        for check in self.checks:
            took = "" if check.seconds is None else f"{check.seconds:7.3f} s"
            target = "" if check.target is None else f"< {check.target:g} s"
            lines.append(
                f"  {_TAGS[check.status]}  {check.name:<36} {took:>9}  {target:<7}  {check.detail}"
            )
        for note in self.notes:
            lines.append(f"  ----  {note}")
        counts = {s: sum(c.status == s for c in self.checks) for s in _TAGS}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        lines += ["", f"{summary} in {self.seconds:.1f} s: {self.verdict} (exit {self.exit_code})"]
        return "\n".join(lines)


def http_base(url: str) -> str:
    """The http(s):// base of an http(s) or ws(s) URL, without a trailing slash."""
    for socket, plain in (("wss://", "https://"), ("ws://", "http://")):
        if url.startswith(socket):
            return plain + url[len(socket) :].rstrip("/")
    if "://" not in url:
        url = "https://" + url
    return url.rstrip("/")


async def _connectivity(base: str, limit: float) -> Check:
    parts = urlsplit(base)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    started = time.perf_counter()
    try:
        with trio.fail_after(limit):
            stream = await trio.open_tcp_stream(host, port)
        await stream.aclose()
    except (OSError, trio.TooSlowError) as exc:
        why = "timed out" if isinstance(exc, trio.TooSlowError) else f"{type(exc).__name__}: {exc}"
        return Check("connectivity", "failed", f"TCP {host}:{port}: {why}", None)
    seconds = time.perf_counter() - started
    return checks.timed(
        "connectivity", "passed", f"TCP {host}:{port}", seconds, checks.CONNECT_TARGET
    )


async def verify(
    url: str,
    *,
    secret: str | None = None,
    maqsam_token: str | None = None,
    limit: float = 15.0,
    tts_text: str = "مرحبا",
    tts_dialect: str = "json",
) -> Report:
    """Run every check against the service at ``url`` (http(s) or ws(s) base URL)."""
    base = http_base(url)
    ws = checks.ws_base(base)
    report = Report(base)
    started = time.perf_counter()
    connectivity = await _connectivity(base, limit)
    report.checks.append(connectivity)
    if connectivity.status == "failed":
        report.seconds = time.perf_counter() - started
        report.notes.append("nothing else checked: the service is not reachable")
        return report
    async with httpx.AsyncClient(base_url=base, timeout=limit, follow_redirects=True) as client:
        report.checks.append((await checks.check_get(client, "/", "GET /"))[0])
        health_check, health = await checks.check_get(client, "/health", "GET /health")
        report.checks.append(health_check)
        if health is not None:
            report.checks += checks.engine_checks(health)
        report.checks.append(
            (await checks.check_get(client, "/maqsam/status", "GET /maqsam/status"))[0]
        )
    for path in checks.WS_PATHS:
        report.checks.append(await checks.check_connect(ws, path, limit))
    report.checks += await _round_trips(ws, health, limit, tts_text, tts_dialect)
    if maqsam_token:
        report.checks.append(await checks.check_maqsam(ws, maqsam_token, limit))
    else:
        report.notes.append("maqsam handshake not checked: give --maqsam-token")
    if secret:
        report.checks.append(await checks.check_secure(ws, secret, limit))
    else:
        report.notes.append("authenticated /ws/secure not checked: give --secret")
    report.seconds = time.perf_counter() - started
    return report


def _engine_state(health: dict[str, Any] | None, kind: str) -> str | None:
    """The engine's state from /health; None when /health did not answer."""
    if health is None or not isinstance(health.get("engines"), dict):
        return None
    slot = health["engines"].get(kind)
    return str(slot.get("state")) if isinstance(slot, dict) else "absent"


async def _round_trips(
    ws: str, health: dict[str, Any] | None, limit: float, text: str, dialect: str
) -> list[Check]:
    results = []
    pcm, rate = b"", 0
    tts_state = _engine_state(health, "tts")
    if tts_state in (None, "loaded"):
        tts, pcm, rate = await checks.check_tts(ws, text, dialect, limit)
        results.append(tts)
    else:
        detail = f"speech synthesis is {tts_state} (/health)"
        results.append(Check(f"tts round trip ({dialect})", "skipped", detail))
    stt_state = _engine_state(health, "stt")
    if stt_state in (None, "loaded"):
        # Real synthesised speech is the better test of a recogniser, when there is some.
        if len(pcm) < 2 * rate * 0.4:
            pcm, rate = checks.generated_speech(), checks.ECHO_RATE
        results.append(await checks.check_stt(ws, pcm, rate, limit))
    else:
        detail = f"speech recognition is {stt_state} (/health)"
        results.append(Check("stt round trip (/ws/echo)", "skipped", detail))
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", help="the service's base URL, e.g. https://voice.example.com")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--secret",
        default=os.environ.get("VERIFY_SECRET"),
        help="VOICE_SERVICE_SECRET: also check an authenticated /ws/secure connect "
        "(default: $VERIFY_SECRET, which keeps it out of the process list)",
    )
    parser.add_argument(
        "--maqsam-token",
        default=os.environ.get("VERIFY_MAQSAM_TOKEN"),
        help="MAQSAM_TOKEN: also check a Maqsam session.setup handshake "
        "(default: $VERIFY_MAQSAM_TOKEN)",
    )
    parser.add_argument(
        "--timeout", type=float, default=15.0, help="seconds allowed for each check (default 15)"
    )
    parser.add_argument("--tts-text", default="مرحبا", help="text of the TTS round trip")
    parser.add_argument(
        "--tts-dialect",
        choices=("json", "legacy"),
        default="json",
        help="/ws/tts dialect: JSON say (default) or legacy tts: frames",
    )


def run_args(args: argparse.Namespace) -> int:
    report = trio.run(
        lambda: verify(
            args.url,
            secret=args.secret,
            maqsam_token=args.maqsam_token,
            limit=args.timeout,
            tts_text=args.tts_text,
            tts_dialect=args.tts_dialect,
        )
    )
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        print(report.text())
    return report.exit_code


def add_parser(subparsers: Any) -> None:
    """Register ``hana-voice verify``."""
    parser = subparsers.add_parser(
        "verify", help="check a deployed service (health, WebSockets, TTS and STT round trips)"
    )
    add_arguments(parser)
    parser.set_defaults(func=run_args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="deploy_verification.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
