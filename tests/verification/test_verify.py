"""hana-voice verify / bin/deploy_verification.py against real servers started by the tests.

main() runs its own trio.run, so those tests are synchronous and the server runs in a
background thread with a trio loop of its own.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from hana_voice import cli
from hana_voice.engines.manager import Loaders
from hana_voice.settings import Settings
from hana_voice.verification.verify import EXIT_FAILED, EXIT_PARTLY, EXIT_PASSED, main, verify
from tests.calls.fakes import fake_loaders, live
from tests.conftest import SECRET, run_server

ROOT = Path(__file__).resolve().parents[2]
MAQSAM_TOKEN = "maqsam-token-0123456789-abcdefghijklmn"
TELEPHONY_TOKEN = "telephony-token-0123456789-abcdefghij"


@contextmanager
def threaded_server(settings: Settings, loaders: Loaders | None = None) -> Iterator[str]:
    """A real server in a background thread (its own trio loop); yields its http:// URL."""
    started: queue.Queue[tuple[str, trio.lowlevel.TrioToken, trio.Event]] = queue.Queue()
    failure: list[BaseException] = []

    async def serve() -> None:
        async with run_server(settings, loaders) as server:
            with trio.fail_after(10):
                await server.services.engines.loaded.wait()
            started.put((server.http_url, trio.lowlevel.current_trio_token(), server.stop))
            await server.stop.wait()

    def target() -> None:
        try:
            trio.run(serve)
        except BaseException as exc:  # handed to the test thread, which re-raises it
            failure.append(exc)
            started.put(("", None, None))  # type: ignore[arg-type]  # wakes the waiting test

    thread = threading.Thread(target=target, name="test-server")
    thread.start()
    url, token, stop = started.get(timeout=30)
    try:
        if failure:
            raise failure[0]
        yield url
    finally:
        if not failure:
            trio.from_thread.run_sync(stop.set, trio_token=token)
        thread.join(timeout=30)
        assert not thread.is_alive(), "the test server did not stop"
    if failure:
        raise failure[0]


@pytest.fixture(autouse=True)
def _no_credentials_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VERIFY_SECRET", raising=False)
    monkeypatch.delenv("VERIFY_MAQSAM_TOKEN", raising=False)


def _full(settings: Settings) -> Settings:
    return live(settings, maqsam_token=MAQSAM_TOKEN, telephony_token=TELEPHONY_TOKEN)


def _checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in report["checks"]}


def test_every_check_passes_on_a_healthy_server(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    loaders, stt, tts = fake_loaders()
    stt.say("مرحبا")
    monkeypatch.setenv("VERIFY_SECRET", SECRET)  # kept out of the command line
    with threaded_server(_full(settings), loaders) as url:
        code = main([url, "--json", "--maqsam-token", MAQSAM_TOKEN])
    out = capsys.readouterr().out
    report = json.loads(out)
    assert code == EXIT_PASSED, out
    assert report["verdict"] == "passed"
    checks = _checks(report)
    assert {c["status"] for c in checks.values()} == {"passed"}
    assert checks["engine stt"]["detail"].startswith("vosk")
    assert "loaded" in checks["engine tts"]["detail"]
    assert checks["connect /ws/secure"]["detail"].startswith("reachable, auth required")
    # The telephony token may come in the stream's start message (Twilio's <Parameter>), as
    # Maqsam's apiKey may: a socket without a header token is not refused at once.
    assert checks["connect /ws/telephony/healthcare"]["detail"] == "reachable"
    assert checks["connect /ws"]["detail"] == "reachable"
    assert checks["stt round trip (/ws/echo)"]["detail"].endswith("heard 'مرحبا'")
    assert checks["maqsam handshake"]["detail"] == "session.ready received"
    assert checks["secure connect"]["detail"] == "ready received"
    for name in ("GET /health", "connect /ws/tts", "tts round trip (json)"):
        assert 0 < checks[name]["seconds"] < checks[name]["target_seconds"]
    assert tts.texts == ["مرحبا"]
    assert SECRET not in out and MAQSAM_TOKEN not in out
    assert report["not_run"] == []


def test_skipped_models_make_a_partly_passed_report(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with threaded_server(settings) as url:
        code = main([url])
    out = capsys.readouterr().out
    assert code == EXIT_PARTLY
    assert "SKIP  tts round trip (json)" in out
    assert "speech recognition is skipped (/health)" in out
    assert "PASS  GET /maqsam/status" not in out  # MAQSAM_TOKEN is unset here
    assert "WARN  GET /maqsam/status" in out
    assert "DEGR  GET /health" in out
    assert "maqsam handshake not checked: give --maqsam-token" in out
    assert out.rstrip().endswith("partly (exit 1)")


def test_an_unreachable_url_fails(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:  # a port that is free and stays closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = main([f"http://127.0.0.1:{port}", "--timeout", "5"])
    out = capsys.readouterr().out
    assert code == EXIT_FAILED
    assert "FAIL  connectivity" in out
    assert out.rstrip().endswith("failed (exit 2)")


def test_registered_as_a_hana_voice_subcommand(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with threaded_server(settings) as url, pytest.raises(SystemExit) as exited:
        cli.main(["verify", url.replace("http://", "ws://"), "--json"])
    assert exited.value.code == EXIT_PARTLY
    assert json.loads(capsys.readouterr().out)["verdict"] == "partly"


def test_bin_script_in_a_subprocess(settings: Settings) -> None:
    loaders, _, _ = fake_loaders()
    with threaded_server(_full(settings), loaders) as url:
        done = subprocess.run(
            [sys.executable, str(ROOT / "bin" / "deploy_verification.py"), url, "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd="/",  # the script finds the package from its own path
            env={k: v for k, v in os.environ.items() if not k.startswith("VERIFY_")},
        )
    assert done.returncode == EXIT_PASSED, done.stderr
    report = json.loads(done.stdout)
    # Without credentials the Maqsam and secure checks are listed as not run, which does
    # not lower the verdict.
    assert len(report["not_run"]) == 2
    assert {c["status"] for c in report["checks"]} == {"passed"}


async def test_legacy_tts_and_wrong_credentials(settings: Settings) -> None:
    loaders, _, _ = fake_loaders()
    async with run_server(_full(settings), loaders) as server:
        with trio.fail_after(10):
            await server.services.engines.loaded.wait()
        with trio.fail_after(30):
            report = await verify(
                server.ws_url, secret="wrong-" + SECRET, maqsam_token="x", tts_dialect="legacy"
            )
    checks = {check.name: check for check in report.checks}
    assert checks["tts round trip (legacy)"].status == "passed"
    assert checks["secure connect"].status == "failed"
    assert checks["secure connect"].detail == "closed 1008 wrong bearer credentials"
    assert checks["maqsam handshake"].status == "failed"
    assert checks["maqsam handshake"].detail == "closed 1008 Unauthorized"
    assert report.exit_code == EXIT_FAILED
    assert "wrong-" + SECRET not in report.text()
