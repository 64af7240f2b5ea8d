"""Start-up warms the prompt cache with every questionnaire prompt; calls then play from it."""

from __future__ import annotations

import trio

from hana_voice.settings import Settings
from hana_voice.wiring import prompt_texts
from tests.calls.fakes import fake_loaders, live
from tests.calls.helpers import engines_ready, wait_prompt
from tests.conftest import run_server
from tests.wsclient import connect


async def test_prompts_are_synthesised_at_start_up_and_served_from_the_cache(
    settings: Settings,
) -> None:
    loaders, _, tts = fake_loaders()
    async with run_server(live(settings, warm_prompt_cache=True), loaders) as server:
        await engines_ready(server)
        questionnaires = server.services.extras["questionnaires"]
        questionnaire = questionnaires["post_discharge_followup"]
        expected = {text for q in questionnaires.values() for text in prompt_texts(q)}
        with trio.fail_after(20):
            while not expected <= set(tts.texts):
                await trio.sleep(0.05)
        with trio.fail_after(10):
            while server.services.extras.get("prompt_cache_status", {}).get("state") != "ready":
                await trio.sleep(0.05)
        async with server.client() as http:
            warm = (await http.get("/health")).json()["prompt_cache"]
        assert warm["state"] == "ready"
        assert warm["prompts"] == len(expected)
        assert warm["failed"] == 0
        synthesised = len(tts.texts)
        cache = server.services.extras["prompt_cache"]
        assert await cache.get(tts, questionnaire.greeting.spoken) is not None
        async with connect(server.ws_url + "/ws/healthcare-questionnaire") as client:
            await client.send_json({"type": "start"})
            greeting = await wait_prompt(client)
            assert greeting["text"] == questionnaire.greeting.spoken
            await client.send_json({"type": "dtmf", "digit": "1"})
            await wait_prompt(client)
            await client.send_json({"type": "stop"})
            await client.closed()
        # Greeting and first question came from the cache: nothing was synthesised for them.
        assert len(tts.texts) == synthesised
