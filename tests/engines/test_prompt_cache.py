"""The prompt cache against a deterministic fake synthesiser that counts its calls."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from hana_voice.engines import prompt_cache as pc
from hana_voice.engines.fake import tone
from hana_voice.engines.prompt_cache import PromptCache, WarmReport, iter_chunks, prompt_key
from hana_voice.engines.runner import EngineRunner
from hana_voice.errors import EngineError

DEADLINE = 10.0


class FakeTTS:
    """A sine tone of 10 ms per character; raises on texts containing ``boom``."""

    def __init__(
        self, name: str = "fake", voice: str = "ar", sample_rate: int = 16000, delay: float = 0.0
    ) -> None:
        self.name = name
        self.voice = voice
        self.sample_rate = sample_rate
        self.delay = delay
        self.calls = 0
        self._lock = threading.Lock()

    def synthesize(self, text: str) -> Iterator[bytes]:
        with self._lock:
            self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        if "boom" in text:
            raise RuntimeError("engine exploded")
        # A pitch per length: different texts give different audio.
        pcm = tone(10 * len(text), self.sample_rate, hz=200 + 10 * len(text))
        for start in range(0, len(pcm), 640):
            yield pcm[start : start + 640]


def listing(directory: Path, pattern: str = "*") -> list[Path]:
    """Blocking on purpose: a tmp_path listing in a test, outside any engine path."""
    return sorted(directory.glob(pattern))


def make_runner() -> EngineRunner:
    return EngineRunner(trio.CapacityLimiter(4), timeout=5.0)


def expected_pcm(tts: FakeTTS, text: str) -> bytes:
    return b"".join(FakeTTS(sample_rate=tts.sample_rate).synthesize(text))


async def test_miss_then_synthesise_then_memory_hit(tmp_path: Path) -> None:
    tts, cache = FakeTTS(), PromptCache(tmp_path)
    with trio.fail_after(DEADLINE):
        assert await cache.get(tts, "مرحبا") is None
        pcm = await cache.get_or_synthesize(tts, make_runner(), "مرحبا")
        assert pcm == expected_pcm(tts, "مرحبا")
        assert await cache.get_or_synthesize(tts, make_runner(), "مرحبا") == pcm
        assert await cache.get(tts, "  مرحبا ") == pcm  # whitespace is normalised away
    assert tts.calls == 1
    assert cache.memory_used == len(pcm)


async def test_persists_across_instances(tmp_path: Path) -> None:
    tts = FakeTTS()
    with trio.fail_after(DEADLINE):
        first = await PromptCache(tmp_path).get_or_synthesize(tts, make_runner(), "كيف حالك")
        second = PromptCache(tmp_path)
        assert await second.get(tts, "كيف حالك") == first
        assert await second.get_or_synthesize(tts, make_runner(), "كيف حالك") == first
    assert tts.calls == 1


async def test_crash_during_write_leaves_no_visible_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tts, cache = FakeTTS(), PromptCache(tmp_path)

    def crash(src: object, dst: object) -> None:
        raise OSError("power cut before rename")

    monkeypatch.setattr(os, "replace", crash)
    with trio.fail_after(DEADLINE), pytest.raises(OSError, match="power cut"):
        await cache.put(tts, "سؤال", b"\x01\x00" * 100)
    monkeypatch.undo()
    assert listing(tmp_path) == []
    # Debris a killed process could leave behind is never read as an entry.
    (tmp_path / (pc.TEMP_PREFIX + "abc")).write_bytes(b"half a file")
    with trio.fail_after(DEADLINE):
        assert await PromptCache(tmp_path).get(tts, "سؤال") is None


async def test_stale_temp_files_are_swept_by_warm(tmp_path: Path) -> None:
    stale = tmp_path / (pc.TEMP_PREFIX + "old")
    fresh = tmp_path / (pc.TEMP_PREFIX + "new")
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    old = time.time() - pc.STALE_TEMP_SECONDS - 60
    os.utime(stale, (old, old))
    with trio.fail_after(DEADLINE):
        await PromptCache(tmp_path).warm(FakeTTS(), make_runner(), [])
    assert not stale.exists()
    assert fresh.exists()


@pytest.mark.parametrize("damage", ["truncate", "flip", "header", "empty"])
async def test_corrupt_file_is_resynthesised(tmp_path: Path, damage: str) -> None:
    tts = FakeTTS()
    with trio.fail_after(DEADLINE):
        good = await PromptCache(tmp_path).get_or_synthesize(tts, make_runner(), "نعم")
    (path,) = listing(tmp_path, "*" + pc.SUFFIX)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 10]
    elif damage == "flip":
        data[-1] ^= 0xFF
    elif damage == "header":
        data[:4] = b"XXXX"
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    fresh = PromptCache(tmp_path)
    with trio.fail_after(DEADLINE):
        assert await fresh.get(tts, "نعم") is None
        assert not path.exists()
        assert await fresh.get_or_synthesize(tts, make_runner(), "نعم") == good
    assert tts.calls == 2
    assert path.exists()


async def test_memory_lru_stays_within_its_bound(tmp_path: Path) -> None:
    tts = FakeTTS()
    one = len(expected_pcm(tts, "abcd"))  # every 4-character text has the same length
    cache = PromptCache(tmp_path, memory_bytes=2 * one)
    runner = make_runner()
    with trio.fail_after(DEADLINE):
        for text in ("aaaa", "bbbb", "cccc"):
            await cache.get_or_synthesize(tts, runner, text)
            assert cache.memory_used <= 2 * one
        assert set(cache._memory) == {cache.key_for(tts, "bbbb"), cache.key_for(tts, "cccc")}
        # The evicted prompt still comes back, from disk, without synthesis.
        assert await cache.get(tts, "aaaa") == expected_pcm(tts, "aaaa")
    assert tts.calls == 3
    assert cache.memory_used <= 2 * one


async def test_prompt_larger_than_memory_is_served_from_disk(tmp_path: Path) -> None:
    tts = FakeTTS()
    cache = PromptCache(tmp_path, memory_bytes=100)
    with trio.fail_after(DEADLINE):
        pcm = await cache.get_or_synthesize(tts, make_runner(), "طويل جدا")
        assert cache.memory_used == 0
        assert await cache.get(tts, "طويل جدا") == pcm


def test_key_separates_engine_voice_rate_and_text() -> None:
    base = prompt_key("xtts", "ar", 16000, "مرحبا")
    assert base == prompt_key("xtts", "ar", 16000, " مرحبا\n")
    others = {
        prompt_key("espeak", "ar", 16000, "مرحبا"),
        prompt_key("xtts", "ar+f2", 16000, "مرحبا"),
        prompt_key("xtts", "ar", 24000, "مرحبا"),
        prompt_key("xtts", "ar", 16000, "مرحبًا"),  # a haraka changes the reading
        prompt_key("xtts", "a", 16000, "rمرحبا"),  # no ambiguity where fields join
    }
    assert base not in others
    assert len(others) == 5


async def test_key_separates_engines_in_the_cache(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path)
    a, b = FakeTTS(name="a"), FakeTTS(name="b", sample_rate=8000)
    with trio.fail_after(DEADLINE):
        pa = await cache.get_or_synthesize(a, make_runner(), "اهلا")
        pb = await cache.get_or_synthesize(b, make_runner(), "اهلا")
    assert (a.calls, b.calls) == (1, 1)
    assert len(pa) == 2 * len(pb)


async def test_warm_counts_and_survives_a_failing_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tts, cache, runner = FakeTTS(), PromptCache(tmp_path), make_runner()
    seen: list[tuple[int, int]] = []
    with trio.fail_after(DEADLINE):
        await cache.get_or_synthesize(tts, runner, "already")
        report = await cache.warm(
            tts,
            runner,
            ["already", "first", "boom secret", "second", "first ", ""],
            progress=lambda done, total: seen.append((done, total)),
        )
    assert (report.cached, report.synthesized, report.failed) == (1, 2, 1)
    assert report.total == 4
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert "secret" not in caplog.text  # texts never reach the logs
    with trio.fail_after(DEADLINE):
        again = await PromptCache(tmp_path).warm(tts, runner, ["already", "first", "second"])
    assert again == WarmReport(cached=3, seconds=again.seconds)


async def test_synthesis_failure_raises_and_stores_nothing(tmp_path: Path) -> None:
    tts, cache = FakeTTS(), PromptCache(tmp_path)
    with trio.fail_after(DEADLINE), pytest.raises(EngineError):
        await cache.get_or_synthesize(tts, make_runner(), "boom")
    assert listing(tmp_path, "*" + pc.SUFFIX) == []


async def test_concurrent_requests_for_one_prompt_synthesise_once(tmp_path: Path) -> None:
    tts, cache, runner = FakeTTS(delay=0.05), PromptCache(tmp_path), make_runner()
    results: list[bytes] = []

    async def ask() -> None:
        results.append(await cache.get_or_synthesize(tts, runner, "انتظر"))

    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(ask)
    assert tts.calls == 1
    assert len(results) == 5
    assert len(set(results)) == 1
    assert cache._locks._locks == {}


def test_iter_chunks_slices_by_duration() -> None:
    pcm = bytes(range(256)) * 5  # 1280 bytes = 640 samples
    chunks = list(iter_chunks(pcm, 16000, chunk_ms=20))
    assert [len(c) for c in chunks] == [640, 640]
    assert b"".join(chunks) == pcm
    assert [len(c) for c in iter_chunks(pcm[:700], 16000)] == [640, 60]
    assert list(iter_chunks(b"", 16000)) == []
    with pytest.raises(ValueError):
        list(iter_chunks(pcm, 16000, chunk_ms=0))


async def test_put_rejects_odd_pcm(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        await PromptCache(tmp_path).put(FakeTTS(), "x", b"\x00\x01\x02")


async def test_cancelled_synthesis_stores_nothing(tmp_path: Path) -> None:
    tts, cache = FakeTTS(delay=0.2), PromptCache(tmp_path)
    with trio.fail_after(DEADLINE):
        with trio.move_on_after(0.05) as scope:
            await cache.get_or_synthesize(tts, make_runner(), "ألغِ")
        assert scope.cancelled_caught
        await trio.sleep(0.3)  # the abandoned engine thread finishes meanwhile
    assert listing(tmp_path, "*" + pc.SUFFIX) == []
    assert cache._locks._locks == {}
