"""Headless Chromium driven over the Chrome DevTools Protocol, with no extra packages.

Chromium is started with ``--remote-debugging-port=0``; it writes the port it chose to
``DevToolsActivePort`` in its profile directory. ``GET /json/list`` names the page target and
its WebSocket, which trio-websocket talks to: one command at a time, events seen meanwhile kept
for the failure messages (console output and uncaught exceptions of the page).

The microphone is Chromium's fake capture device playing a WAV file in a loop
(``--use-file-for-fake-audio-capture``), and the permission prompt is answered yes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

#: Where Debian's chromium package puts its launcher; CHROMIUM overrides it.
DEFAULT_CHROMIUM = "/usr/bin/chromium"

INSTALL_HINT = "run bin/install-browser (installs Debian's chromium and chromium-driver)"


def chromium_path() -> str:
    """The browser to drive; fails the test (never skips it) when there is none."""
    wanted = os.environ.get("CHROMIUM", DEFAULT_CHROMIUM)
    found = shutil.which(wanted)
    if found is None:
        pytest.fail(f"no Chromium at {wanted}: {INSTALL_HINT}", pytrace=False)
    return found


def chromium_flags(profile: Path, fake_audio: Path) -> list[str]:
    return [
        "--headless=new",
        "--no-sandbox",  # the tests may run as root, where the sandbox refuses to start
        "--disable-gpu",
        "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={fake_audio}",
        "--autoplay-policy=no-user-gesture-required",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--no-first-run",
        "--no-default-browser-check",
        f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
    ]


class PageError(AssertionError):
    """The page's JavaScript threw, or a DevTools command failed."""


class Page:
    """One browser tab: evaluate JavaScript in it and wait for conditions."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self._ws = ws
        self._ids = count(1)
        #: Console messages and uncaught exceptions of the page, as short strings.
        self.console: list[str] = []

    async def command(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        await self._ws.send_message(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(await self._ws.get_message())
            if message.get("id") == ident:
                if "error" in message:
                    raise PageError(f"{method} failed: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self._note_event(message)

    def _note_event(self, message: dict[str, Any]) -> None:
        params = message.get("params", {})
        if message.get("method") == "Runtime.consoleAPICalled":
            values = [str(arg.get("value", arg.get("description"))) for arg in params["args"]]
            self.console.append(f"console.{params['type']}: {' '.join(values)}")
        elif message.get("method") == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            self.console.append(f"exception: {text}")

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited), as JSON-able data."""
        reply = await self.command(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise PageError(f"{expression!r} threw: {text}")
        return reply["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 10, poll: float = 0.05) -> Any:
        """Poll until the expression is truthy; return its value. Fails with the page's
        console and the demo's state when the deadline passes."""
        try:
            with trio.fail_after(timeout):
                while not (value := await self.evaluate(expression)):
                    await trio.sleep(poll)
                return value
        except trio.TooSlowError:
            state = await self.evaluate(
                "JSON.stringify({state: hanaDemo.state, stats: hanaDemo.stats,"
                " close: [hanaDemo.closeCode, hanaDemo.closeReason], entries: hanaDemo.entries})"
            )
            raise AssertionError(
                f"waited {timeout} s for {expression}\npage state: {state}\n"
                + "\n".join(self.console[-20:])
            ) from None


async def _devtools_port(profile: Path, process: trio.Process, timeout: float) -> int:
    marker = trio.Path(profile / "DevToolsActivePort")
    log_path = trio.Path(profile.parent / "chromium.log")
    with trio.fail_after(timeout):
        while True:
            if process.returncode is not None:
                output = await log_path.read_text(errors="replace")
                raise AssertionError(
                    f"chromium exited early with status {process.returncode}:\n{output[-2000:]}"
                )
            if await marker.exists():
                lines = (await marker.read_text()).split("\n")
                if len(lines) >= 2 and lines[0].strip().isdigit():
                    return int(lines[0])
            await trio.sleep(0.05)


async def _page_socket_url(port: int, timeout: float) -> str:
    """The DevTools WebSocket of the tab (the one opened on the command line)."""
    async with httpx.AsyncClient(timeout=5) as client:
        with trio.fail_after(timeout):
            while True:
                targets = (await client.get(f"http://127.0.0.1:{port}/json/list")).json()
                for target in targets:
                    if target.get("type") == "page" and "webSocketDebuggerUrl" in target:
                        return str(target["webSocketDebuggerUrl"])
                await trio.sleep(0.05)


@asynccontextmanager
async def open_page(
    url: str, fake_audio: Path, profile: Path, *, start_timeout: float = 30
) -> AsyncIterator[Page]:
    """Start headless Chromium on ``url`` with ``fake_audio`` as the microphone."""
    chromium = chromium_path()
    await trio.Path(profile).mkdir(parents=True, exist_ok=True)
    log_path = profile.parent / "chromium.log"
    with log_path.open("wb") as log_file:
        process = await trio.lowlevel.open_process(
            [chromium, *chromium_flags(profile, fake_audio), url],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,  # its helper processes go with it when the group is killed
        )
    try:
        port = await _devtools_port(profile, process, start_timeout)
        socket_url = await _page_socket_url(port, start_timeout)
        async with open_websocket_url(socket_url, max_message_size=64 * 1024 * 1024) as ws:
            page = Page(ws)
            await page.command("Runtime.enable")
            # The tab may still show about:blank, which is "complete" too.
            await page.wait_for(
                f"location.href === {json.dumps(url)} && document.readyState === 'complete'",
                timeout=start_timeout,
            )
            yield page
            with trio.move_on_after(5):
                await page.command("Browser.close")
    finally:
        with trio.CancelScope(shield=True):
            await _stop(process)


async def _stop(process: trio.Process) -> None:
    with trio.move_on_after(5):
        await process.wait()
        return
    # Chromium ignored Browser.close (or the test failed before it): end its whole group.
    with trio.move_on_after(5):
        _signal_group(process, signal.SIGTERM)
        await process.wait()
        return
    _signal_group(process, signal.SIGKILL)
    await process.wait()


def _signal_group(process: trio.Process, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)
