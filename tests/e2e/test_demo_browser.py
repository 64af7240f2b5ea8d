"""The /demo page in headless Chromium: a whole questionnaire by voice, keypad and text.

The microphone is Chromium's fake capture device playing a WAV made here (a noise lead-in,
one speech-like utterance, then a long quiet tail, so the fake recogniser hears exactly one
answer, "نعم", the consent). The server runs in-process with the fake engines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio

from hana_voice.audio.wav import write_wav
from hana_voice.engines.fake import FakeTextToSpeech
from hana_voice.settings import Settings
from tests.calls.fakes import fake_loaders, live, spoken
from tests.conftest import SECRET, run_server
from tests.e2e.browser import INSTALL_HINT, Page, chromium_path, open_page

QUESTIONNAIRE = (
    Path(__file__).parents[2] / "hana_voice" / "questionnaires" / "post_discharge_followup.json"
)
MIC_RATE = 48000


def fake_microphone(path: Path) -> Path:
    """Two seconds of line noise (the page starts and the VAD learns the floor), the spoken
    answer, then quiet for longer than the test runs (Chromium loops the file)."""
    path.write_bytes(write_wav(spoken(MIC_RATE, lead=2.0, tail=40.0), MIC_RATE))
    return path


async def click(page: Page, selector: str) -> None:
    found = await page.evaluate(
        f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
        " if (!el || el.disabled) return false; el.click(); return true; })()"
    )
    assert found, f"no enabled {selector} to click"


async def next_prompt(page: Page, heard: int) -> tuple[dict[str, Any], int]:
    """Wait until a prompt after the first ``heard`` ones has been fully received."""
    await page.wait_for(
        f"hanaDemo.stats.promptsEnded > {heard}"
        " && hanaDemo.stats.promptsEnded === hanaDemo.stats.prompts"
    )
    prompts = await page.evaluate("hanaDemo.entries.filter(e => e.kind === 'prompt')")
    count = await page.evaluate("hanaDemo.stats.promptsEnded")
    return prompts[-1], count


async def test_demo_page_is_served(settings: Settings) -> None:
    async with run_server(settings) as server, server.client() as client:
        with trio.fail_after(10):
            page = await client.get("/demo")
            script = await client.get("/demo/demo.js")
            style = await client.get("/demo/demo.css")
            missing = await client.get("/demo/secrets.py")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="/demo/demo.js">' in page.text
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "window.hanaDemo" in script.text
    assert style.status_code == 200
    assert missing.status_code == 404
    # Offline: the page pulls nothing from another host.
    for body in (page.text, script.text, style.text):
        assert "http://" not in body and "https://" not in body


async def test_questionnaire_in_headless_chromium(settings: Settings, tmp_path: Path) -> None:
    chromium_path()  # fail with the install hint before starting anything
    questionnaire = json.loads(QUESTIONNAIRE.read_text(encoding="utf-8"))
    loaders, stt, tts = fake_loaders()
    stt.say("نعم")
    microphone = fake_microphone(tmp_path / "microphone.wav")
    async with run_server(live(settings), loaders) as server:
        with trio.fail_after(10):
            await server.services.engines.loaded.wait()
        url = server.http_url + "/demo?ec=0"
        async with open_page(url, microphone, tmp_path / "profile") as page:
            await click(page, "#start")

            greeting, heard = await next_prompt(page, 0)
            assert greeting["text"] == questionnaire["greeting"]["speech_text"]
            assert greeting["dir"] == "rtl"
            shown = await page.evaluate(
                "(() => { const el = document.querySelector('#log li.prompt .text');"
                " return [el.textContent, getComputedStyle(el).direction]; })()"
            )
            assert shown == [questionnaire["greeting"]["speech_text"], "rtl"]
            await page.wait_for("hanaDemo.stats.chunksPlayed > 0")

            # The fake microphone's utterance: heard by the server, shown as a transcript.
            transcript = await page.wait_for(
                "hanaDemo.entries.find(e => e.kind === 'transcript')", timeout=20
            )
            assert transcript["text"] == "نعم"
            assert transcript["dir"] == "rtl"
            assert sum(r.fed_bytes for r in stt.recognizers) > 0
            assert await page.evaluate("hanaDemo.stats.framesSent") > 0

            questions = questionnaire["questions"]
            # Pain "1" then "#": a lone 1 could still become 10, so "#" ends the number.
            keypresses = (["1"], ["2"], ["1", "#"], ["2"], ["1"], ["1"])
            for question, keys in zip(questions, keypresses, strict=False):
                prompt, heard = await next_prompt(page, heard)
                assert prompt["text"] == question["speech_text"]
                for key in keys:
                    await click(page, f'#keypad button[data-digit="{key}"]')
            prompt, heard = await next_prompt(page, heard)
            assert prompt["text"] == questions[-1]["speech_text"]
            await page.evaluate("document.getElementById('text').value = 'لا شيء، شكرا'")
            await click(page, "#send")

            result = await page.wait_for("hanaDemo.result", timeout=20)
            end = await page.wait_for("hanaDemo.endReason", timeout=20)
            await page.wait_for("hanaDemo.closeCode !== null", timeout=20)
            close = await page.evaluate("[hanaDemo.closeCode, hanaDemo.state]")
            log_kinds = await page.evaluate(
                "Array.from(document.querySelectorAll('#log li')).map(li => li.className)"
            )
            stats = await page.evaluate("hanaDemo.stats")
            assert not [line for line in page.console if line.startswith("exception")]

    assert close == [1000, "ended"]
    assert end
    assert result["outcome"] == "completed"
    answers = {a["question_id"]: a["response"] for a in result["answers"]}
    assert answers["medication_adherence"] == "yes"
    assert answers["chest_pain_or_breathlessness"] == "no"
    assert answers["pain_level"] == 1
    assert answers["fever"] == "no"
    assert answers["overall_condition"] == "better"
    assert answers["follow_up_appointment"] == "yes"
    assert answers["notes_for_care_team"] == "لا شيء، شكرا"
    assert {"prompt", "transcript", "dtmf", "result", "end"} <= set(log_kinds)
    assert stats["chunksReceived"] > 0
    assert stats["chunksPlayed"] > 0
    assert stats["errors"] == 0
    assert tts.texts[0] == questionnaire["greeting"]["speech_text"]


async def test_barge_in_on_the_secure_endpoint(settings: Settings, tmp_path: Path) -> None:
    chromium_path()
    # A greeting of about ten seconds, paced in real time: the fake caller's answer, two
    # seconds in, talks over it. The page reaches /ws/secure/healthcare with ?token=.
    loaders, stt, _ = fake_loaders(tts=FakeTextToSpeech(ms_per_char=60.0, chunk_ms=40))
    stt.say("نعم")
    microphone = fake_microphone(tmp_path / "microphone.wav")
    async with run_server(live(settings), loaders) as server:
        with trio.fail_after(10):
            await server.services.engines.loaded.wait()
        async with server.client() as client:
            minted = await client.get("/auth/token", headers={"Authorization": f"Bearer {SECRET}"})
        token = minted.json()["token"]
        url = f"{server.http_url}/demo?ec=0&endpoint=/ws/secure/healthcare&token={token}"
        async with open_page(url, microphone, tmp_path / "profile") as page:
            await click(page, "#start")
            await page.wait_for("hanaDemo.sessionId")  # the token was accepted
            await page.wait_for("hanaDemo.stats.bargeIns > 0", timeout=20)
            await page.wait_for("hanaDemo.entries.some(e => e.text === '(interrupted)')")
            transcript = await page.wait_for(
                "hanaDemo.entries.find(e => e.kind === 'transcript')", timeout=20
            )
            await click(page, "#stop")
            await page.wait_for("hanaDemo.closeCode !== null", timeout=20)
            stats = await page.evaluate("hanaDemo.stats")
            close = await page.evaluate("[hanaDemo.closeCode, hanaDemo.state]")
    assert transcript["text"] == "نعم"
    assert stats["chunksDropped"] > 0, "queued greeting audio was flushed"
    assert stats["chunksPlayed"] + stats["chunksDropped"] <= stats["chunksReceived"]
    assert close == [1000, "ended"]


def test_missing_browser_fails_with_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHROMIUM", "/nonexistent/chromium")
    with pytest.raises(pytest.fail.Exception, match="bin/install-browser") as failed:
        chromium_path()
    assert INSTALL_HINT in str(failed.value)
