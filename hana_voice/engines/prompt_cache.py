"""Fixed prompts synthesised once and kept, so a cached prompt starts playing at once.

Questionnaire questions, greetings and retries repeat on every call. Each is synthesised once
per (engine, voice, sample rate, normalised text) and stored under ``DATA_DIR/cache/prompts``
(see :func:`prompt_cache_dir`); a byte-bounded LRU in memory sits in front of the disk.

On disk, one file per prompt: a fixed header (magic, format version, sample rate, PCM length,
the entry's key and a sha256 of the PCM) followed by raw PCM s16le mono. Files are written to a
temporary name in the same directory and renamed with ``os.replace``, so a crash leaves either
the old state or the whole new file, never half of one. A file whose header, length or checksum
does not match is treated as a miss, deleted and synthesised again.

Concurrency: the memory LRU is touched only from the trio thread. Disk reads and writes run in
worker threads; each writer has its own temporary file, so two processes sharing the directory
at worst write the same entry twice. Within a process, callers asking for the same uncached
prompt at once wait on one per-key ``trio.Lock`` and the prompt is synthesised once.

Cancellation: a :meth:`PromptCache.get_or_synthesize` cancelled while synthesising stores
nothing; the engine thread is stopped through :meth:`EngineRunner.stream`. Disk threads are not
abandoned: a write that already started finishes (atomically) before the cancel is delivered.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import struct
import tempfile
import time
import unicodedata
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import trio

from hana_voice.engines.base import TextToSpeech
from hana_voice.engines.runner import EngineRunner
from hana_voice.errors import EngineError, HanaError

log = logging.getLogger(__name__)

#: Bumped whenever the stored audio or the key recipe changes, so old entries are never read.
FORMAT_VERSION = 1
MAGIC = b"HVPC"
_HEADER = struct.Struct("<4sHIQ32s32s")  # magic, version, rate, pcm length, key, pcm sha256
SUFFIX = ".pcm"
TEMP_PREFIX = ".tmp-"
#: Leftover temporary files older than this are debris from a crash, not a write in progress.
STALE_TEMP_SECONDS = 600.0
DEFAULT_MEMORY_BYTES = 64 * 1024 * 1024

Progress = Callable[[int, int], None]


def prompt_cache_dir(cache_dir: Path) -> Path:
    """Where prompts live, given ``settings.cache_dir``."""
    return cache_dir / "prompts"


def normalise_text(text: str) -> str:
    """NFC and collapsed whitespace: spellings that sound the same share one entry.

    Harakat are kept: they change how Arabic is read.
    """
    return " ".join(unicodedata.normalize("NFC", text).split())


def prompt_key(engine: str, voice: str, sample_rate: int, text: str) -> str:
    """The hex sha256 naming one prompt's audio."""
    parts = (str(FORMAT_VERSION), engine, voice, str(sample_rate), normalise_text(text))
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def iter_chunks(pcm: bytes, sample_rate: int, chunk_ms: int = 20) -> Iterator[bytes]:
    """Slice PCM s16le mono into chunks of ``chunk_ms`` for streaming a cached prompt out."""
    if chunk_ms <= 0 or sample_rate <= 0:
        raise ValueError("chunk_ms and sample_rate must be positive")
    size = max(2, sample_rate * chunk_ms // 1000 * 2)
    for start in range(0, len(pcm), size):
        yield pcm[start : start + size]


@dataclass(frozen=True)
class WarmReport:
    """What :meth:`PromptCache.warm` did."""

    cached: int = 0
    synthesized: int = 0
    failed: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return self.cached + self.synthesized + self.failed


class _CorruptEntry(Exception):
    """A stored file does not hold what its header promises."""


def _encode(key: str, sample_rate: int, pcm: bytes) -> bytes:
    digest = hashlib.sha256(pcm).digest()
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, sample_rate, len(pcm), bytes.fromhex(key), digest)
    return header + pcm


def _decode(key: str, sample_rate: int, data: bytes) -> bytes:
    if len(data) < _HEADER.size:
        raise _CorruptEntry("shorter than its header")
    magic, version, rate, length, stored_key, digest = _HEADER.unpack_from(data)
    if magic != MAGIC or version != FORMAT_VERSION:
        raise _CorruptEntry("unknown magic or format version")
    if rate != sample_rate or stored_key != bytes.fromhex(key):
        raise _CorruptEntry("header names another prompt")
    pcm = data[_HEADER.size :]
    if len(pcm) != length:
        raise _CorruptEntry(f"truncated: {len(pcm)} of {length} bytes")
    if hashlib.sha256(pcm).digest() != digest:
        raise _CorruptEntry("checksum mismatch")
    return pcm


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _sweep_stale_temps(directory: Path, older_than: float) -> int:
    if not directory.is_dir():
        return 0
    cutoff = time.time() - older_than
    removed = 0
    for tmp in directory.glob(TEMP_PREFIX + "*"):
        with contextlib.suppress(OSError):
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                removed += 1
    return removed


def _first_leaf(group: BaseExceptionGroup[EngineError]) -> EngineError:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


class _KeyLocks:
    """One trio.Lock per key while anybody holds or waits on it; dropped afterwards."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[trio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (trio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class PromptCache:
    """Prompt audio by (engine, voice, rate, text), in memory and on disk. Use from trio only."""

    def __init__(self, directory: Path, memory_bytes: int = DEFAULT_MEMORY_BYTES) -> None:
        if memory_bytes < 0:
            raise ValueError("memory_bytes must not be negative")
        self.directory = directory
        self.memory_bytes = memory_bytes
        self._memory: OrderedDict[str, bytes] = OrderedDict()
        self._memory_used = 0
        self._locks = _KeyLocks()

    @property
    def memory_used(self) -> int:
        """Bytes of PCM held in the memory LRU."""
        return self._memory_used

    def key_for(self, tts: TextToSpeech, text: str) -> str:
        return prompt_key(tts.name, tts.voice, tts.sample_rate, text)

    def path_for(self, key: str) -> Path:
        return self.directory / (key + SUFFIX)

    def _remember(self, key: str, pcm: bytes) -> None:
        old = self._memory.pop(key, None)
        if old is not None:
            self._memory_used -= len(old)
        if len(pcm) > self.memory_bytes:
            return  # would evict everything else and still not fit
        self._memory[key] = pcm
        self._memory_used += len(pcm)
        while self._memory_used > self.memory_bytes:
            _, evicted = self._memory.popitem(last=False)
            self._memory_used -= len(evicted)

    def _recall(self, key: str) -> bytes | None:
        pcm = self._memory.get(key)
        if pcm is not None:
            self._memory.move_to_end(key)
        return pcm

    async def get(self, tts: TextToSpeech, text: str) -> bytes | None:
        """The prompt's PCM if cached (memory, then disk), else None."""
        key = self.key_for(tts, text)
        pcm = self._recall(key)
        if pcm is not None:
            return pcm
        path = self.path_for(key)
        data = await trio.to_thread.run_sync(_read, path)
        if data is None:
            return None
        try:
            pcm = _decode(key, tts.sample_rate, data)
        except _CorruptEntry as exc:
            log.warning("prompt cache entry %s is corrupt (%s); dropping it", key[:12], exc)
            await trio.to_thread.run_sync(_remove, path)
            return None
        self._remember(key, pcm)
        return pcm

    async def put(self, tts: TextToSpeech, text: str, pcm: bytes) -> None:
        """Store a prompt's PCM (s16le mono at ``tts.sample_rate``) on disk and in memory."""
        if len(pcm) % 2:
            raise ValueError("PCM s16le must hold a whole number of samples")
        key = self.key_for(tts, text)
        data = _encode(key, tts.sample_rate, pcm)
        await trio.to_thread.run_sync(_write_atomic, self.path_for(key), data)
        self._remember(key, pcm)

    async def get_or_synthesize(self, tts: TextToSpeech, runner: EngineRunner, text: str) -> bytes:
        """The cached prompt, or synthesise it through ``runner``, store it and return it."""
        pcm = await self.get(tts, text)
        if pcm is not None:
            return pcm
        return await self._synthesize_once(tts, runner, text)

    async def _synthesize_once(self, tts: TextToSpeech, runner: EngineRunner, text: str) -> bytes:
        """Synthesise and store a prompt ``get`` missed, once however many callers ask."""
        key = self.key_for(tts, text)
        async with self._locks.hold(key):
            # Whoever held the lock before us may have stored it meanwhile.
            pcm = await self.get(tts, text)
            if pcm is not None:
                return pcm
            pcm = await self._synthesize(tts, runner, text, key)
            await self.put(tts, text, pcm)
            return pcm

    async def _synthesize(
        self, tts: TextToSpeech, runner: EngineRunner, text: str, key: str
    ) -> bytes:
        start = time.perf_counter()
        buf = bytearray()
        try:
            async with runner.stream(
                lambda: tts.synthesize(text), what=f"{tts.name} prompt synthesis"
            ) as chunks:
                async for chunk in chunks:
                    buf += chunk
        except BaseExceptionGroup as group:
            # The runner's nursery wraps the engine error; callers want the error itself.
            # Anything else in the group (a Cancelled above all) must travel on untouched.
            engine_errors, rest = group.split(EngineError)
            if engine_errors is None or rest is not None:
                raise
            raise _first_leaf(engine_errors) from group
        if not buf:
            raise EngineError(f"{tts.name} produced no audio for prompt {key[:12]}")
        if len(buf) % 2:
            raise EngineError(f"{tts.name} produced an odd number of PCM bytes")
        log.info(
            "prompt %s synthesised by %s in %.0f ms (%d bytes)",
            key[:12],
            tts.name,
            (time.perf_counter() - start) * 1000.0,
            len(buf),
        )
        return bytes(buf)

    async def warm(
        self,
        tts: TextToSpeech,
        runner: EngineRunner,
        texts: Iterable[str],
        progress: Progress | None = None,
    ) -> WarmReport:
        """Make sure every text is cached; one failure is counted and logged, not raised.

        ``progress(done, total)`` is called after each distinct prompt.
        """
        start = time.perf_counter()
        await trio.to_thread.run_sync(_sweep_stale_temps, self.directory, STALE_TEMP_SECONDS)
        unique: dict[str, str] = {}
        for text in texts:
            if normalise_text(text):
                unique.setdefault(self.key_for(tts, text), text)
        cached = synthesized = failed = 0
        for done, (key, text) in enumerate(unique.items(), start=1):
            try:
                if await self.get(tts, text) is not None:
                    cached += 1
                else:
                    await self._synthesize_once(tts, runner, text)
                    synthesized += 1
            except (HanaError, OSError) as exc:
                failed += 1
                # The text is patient-facing content: log only the key and the error type.
                log.warning(
                    "prompt %s could not be warmed with %s: %s",
                    key[:12],
                    tts.name,
                    type(exc).__name__,
                )
            if progress is not None:
                progress(done, len(unique))
        report = WarmReport(cached, synthesized, failed, time.perf_counter() - start)
        log.info(
            "prompt cache warmed for %s/%s: %d cached, %d synthesised, %d failed in %.1f s",
            tts.name,
            tts.voice,
            report.cached,
            report.synthesized,
            report.failed,
            report.seconds,
        )
        return report
