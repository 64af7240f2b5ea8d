"""The hot switch: new calls get the new engine, calls in progress keep theirs, nothing loads
twice; models installed by hand are picked up by polling and by ``hana-voice models reload``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, cast

import trio

from hana_voice.cli import build_parser
from hana_voice.engines.fake import FakeSpeechToText, FakeTextToSpeech
from hana_voice.engines.manager import EngineManager, Loaders
from hana_voice.engines.vosk_stt import check_model_dir
from hana_voice.errors import EngineError
from hana_voice.models.watch import ModelWatcher, run_dir
from hana_voice.settings import DEFAULT_VOSK_MODEL, Settings
from tests.conftest import run_server
from tests.models.conftest import auto_settings
from tests.models.mirror import unreachable_url


class CountingLoader:
    """Loads a new fake engine each time (after ``delay`` s); fails while ``fail`` is set."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.loaded: list[FakeSpeechToText] = []
        self.fail = False

    def __call__(self, settings: Settings) -> Any:
        import time

        check_model_dir(settings.vosk_model_path)
        time.sleep(self.delay)
        if self.fail:
            raise EngineError("broken model")
        engine = FakeSpeechToText()
        self.loaded.append(engine)
        return engine


def loaders(stt: CountingLoader) -> Loaders:
    return Loaders(stt=cast(Any, stt), espeak=cast(Any, lambda s: FakeTextToSpeech()))


def install_by_hand(path: Path, marker: str = "1") -> None:
    """A minimal Vosk layout, written the recommended way: elsewhere, then renamed in."""
    staging = path.with_name(f".copy-{path.name}")
    for name in ("am/final.mdl", "conf/mfcc.conf", "conf/model.conf", "graph/HCLG.fst"):
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).write_text(marker)
    if path.exists():
        shutil.rmtree(path)
    staging.rename(path)


def model_settings(settings: Settings, **changes: Any) -> Settings:
    return auto_settings(settings, unreachable_url(), models_auto_download="none", **changes)


async def test_a_call_keeps_the_engine_it_started_with(settings: Settings) -> None:
    s = model_settings(settings)
    install_by_hand(s.vosk_model_path)
    stt = CountingLoader()
    engines = EngineManager(s, loaders(stt))
    await engines.load_all()
    old = engines.stt
    in_progress = engines.snapshot()
    assert not await engines.refresh("stt"), "same files: nothing is loaded again"
    install_by_hand(s.vosk_model_path, marker="2")
    assert await engines.refresh("stt")
    assert len(stt.loaded) == 2
    assert in_progress.stt is old, "the call in progress keeps its recogniser's engine"
    assert engines.snapshot().stt is stt.loaded[1] is engines.stt
    assert engines.stt_slot.switches == 1
    assert engines.health()["stt"]["switches"] == 1


async def test_concurrent_triggers_load_once(settings: Settings) -> None:
    s = model_settings(settings)
    stt = CountingLoader(delay=0.2)
    engines = EngineManager(s, loaders(stt))
    await engines.load_all()
    assert engines.stt_slot.state == "missing"
    install_by_hand(s.vosk_model_path)
    results: list[bool] = []

    async def trigger() -> None:
        results.append(await engines.refresh("stt"))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(trigger)
    assert sorted(results) == [False] * 4 + [True]
    assert len(stt.loaded) == 1


async def test_a_call_started_without_speech_recognition_takes_it_when_it_arrives(
    settings: Settings,
) -> None:
    s = model_settings(settings)
    stt = CountingLoader()
    engines = EngineManager(s, loaders(stt))
    await engines.load_all()
    call = engines.snapshot()
    assert (call.stt, call.stt_state) == (None, "missing")
    install_by_hand(s.vosk_model_path)
    await engines.refresh("stt")
    assert (call.stt, call.stt_state) == (stt.loaded[0], "loaded")


async def test_a_failed_switch_keeps_the_engine_in_use(settings: Settings) -> None:
    s = model_settings(settings)
    install_by_hand(s.vosk_model_path)
    stt = CountingLoader()
    engines = EngineManager(s, loaders(stt))
    await engines.load_all()
    old = engines.stt
    install_by_hand(s.vosk_model_path, marker="broken")
    stt.fail = True
    assert not await engines.refresh("stt")
    assert engines.stt is old and engines.stt_slot.state == "loaded"
    assert "broken model" in (engines.stt_slot.switch_error or "")
    stt.fail = False
    assert not await engines.refresh("stt"), "the same files are not retried on their own"
    assert await engines.refresh("stt", force=True), "models reload retries them"
    assert engines.stt is stt.loaded[-1] is not old


async def test_a_model_copied_in_by_hand_is_picked_up_by_polling(settings: Settings) -> None:
    s = model_settings(settings, models_watch_seconds=0.05)
    stt = CountingLoader()
    async with run_server(s, loaders(stt)) as server, server.client() as client:
        with trio.fail_after(10):
            await server.services.engines.loaded.wait()
        assert server.services.engines.snapshot().stt is None
        install_by_hand(s.vosk_model_path)
        with trio.fail_after(10):
            while server.services.engines.stt is None:
                await trio.sleep(0.02)
        health = (await client.get("/health")).json()
        assert health["engines"]["stt"]["state"] == "loaded"
        assert health["engines"]["stt"]["switches"] == 1
        await trio.sleep(0.3)  # more polls: the same files are not loaded again
        assert len(stt.loaded) == 1


async def test_models_reload_signals_the_running_service(settings: Settings) -> None:
    s = model_settings(settings)  # no polling: only the signal can do it
    stt = CountingLoader()
    async with run_server(s, loaders(stt)) as server:
        watcher: ModelWatcher = server.services.extras["model_watcher"]
        with trio.fail_after(10):
            await server.services.engines.loaded.wait()
            await watcher.ready.wait()
        (pid_file,) = run_dir(s).glob(f"*-{os.getpid()}.pid")
        (run_dir(s) / "other-host-1.pid").write_text("1\n")  # a replica elsewhere: left alone
        install_by_hand(s.vosk_model_path)
        args = build_parser().parse_args(["models", "reload", "--data-dir", str(s.data_dir)])
        assert args.func(args) == 0
        with trio.fail_after(10):
            while server.services.engines.stt is None:
                await trio.sleep(0.02)
        assert watcher.reloads == 1 and len(stt.loaded) == 1
    assert not pid_file.exists(), "the pid file goes when the service stops"
    assert (run_dir(s) / "other-host-1.pid").exists()


def test_models_reload_without_a_service_says_so(tmp_path: Path) -> None:
    args = build_parser().parse_args(["models", "reload", "--data-dir", str(tmp_path)])
    assert args.func(args) == 1


async def test_health_answers_at_once_while_the_mirror_is_down(settings: Settings) -> None:
    s = auto_settings(settings, unreachable_url())
    stt = CountingLoader()
    async with run_server(s, loaders(stt)) as server, server.client() as client:
        with trio.fail_after(10):
            while True:
                started = trio.current_time()
                response = await client.get("/health")
                assert trio.current_time() - started < 1.0
                body = response.json()
                download = body["models"]["downloads"][DEFAULT_VOSK_MODEL]
                if download["failures"] >= 1:
                    break
                await trio.sleep(0.05)
        assert response.status_code == 200, "degraded, not down: espeak and the keypad work"
        assert body["status"] == "degraded"
        assert "ConnectError" in download["last_error"]
        assert body["models"]["auto_download"] == "stt"
        metrics = (await client.get("/metrics")).text
        assert f'hana_model_download_failures_total{{model="{DEFAULT_VOSK_MODEL}"}}' in metrics
        model = f'hana_model_download_state{{model="{DEFAULT_VOSK_MODEL}"'
        assert any(f'{model},state="{x}"}} 1.0' in metrics for x in ("retrying", "downloading"))
