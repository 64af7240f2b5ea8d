"""Model download against a local HTTP server serving small archives the tests build.

These tests are synchronous (the command blocks by design); their deadline is the client's
read timeout (2 s) and the server's own socket timeout, so none can hang.
"""

from __future__ import annotations

import hashlib
import io
import random
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from hana_voice.errors import DownloadError
from hana_voice.models import manifest
from hana_voice.models.download import download_model, main, make_client
from hana_voice.models.fetch import FetchOptions
from hana_voice.models.manifest import ModelSpec, RemoteFile
from hana_voice.models.unpack import extract_tar, extract_zip

QUIET = FetchOptions(retries=3, backoff=0.0, progress=False)
MODEL = "vosk-model-test-0.1"
REQUIRED = (("am/final.mdl", "final.mdl"), ("conf/mfcc.conf",))


@dataclass
class Site:
    """What the server serves and how it misbehaves; records each request's Range header."""

    files: dict[str, bytes] = field(default_factory=dict)
    mode: str = "range"  # range | ignore_range | drop_once
    headers: dict[str, str] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    dropped: bool = False


def make_handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 5

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output clean

        def do_GET(self) -> None:
            rng = self.headers.get("Range")
            site.requests.append((self.path, rng))
            body = site.files.get(self.path.lstrip("/"))
            if body is None:
                self.send_error(404)
                return
            start = 0
            if rng and site.mode != "ignore_range":
                start = int(rng.removeprefix("bytes=").split("-")[0])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            for name, value in site.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            if site.mode == "drop_once" and not site.dropped:
                site.dropped = True
                self.wfile.write(body[start : start + (len(body) - start) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body[start:])

    return Handler


@pytest.fixture
def site() -> Iterator[tuple[Site, str]]:
    state = Site()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with make_client(timeout=2.0) as c:
        yield c


def model_zip(top: str = MODEL, extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{top}/am/final.mdl", b"acoustic model " * 4000)
        zf.writestr(f"{top}/am/noise.bin", random.Random(0).randbytes(100_000))
        zf.writestr(f"{top}/conf/mfcc.conf", b"--use-energy=false\n")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


def spec(base: str, sha256: str | None = None, name: str = MODEL) -> ModelSpec:
    return ModelSpec(
        name=name,
        kind="stt",
        base_url=base,
        files=(RemoteFile(f"{name}.zip", "small", sha256=sha256),),
        target=name,
        archive=True,
        required=REQUIRED,
        licence="Apache-2.0",
        description="test model",
        max_unpacked_bytes=10 * 1024 * 1024,
    )


def leave_part(models_dir: Path, data: bytes) -> None:
    """The ``.part`` file an interrupted earlier run left for the test model's archive."""
    part = models_dir / ".downloads" / MODEL / f"{MODEL}.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_downloads_verifies_and_installs(
    tmp_path: Path, site: tuple[Site, str], client: httpx.Client
) -> None:
    state, base = site
    body = model_zip()
    state.files[f"{MODEL}.zip"] = body
    assert download_model(spec(base, sha(body)), tmp_path, client, options=QUIET)
    assert (tmp_path / MODEL / "am" / "final.mdl").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [MODEL]  # no staging or downloads left
    # Already present: nothing is requested.
    before = len(state.requests)
    assert not download_model(spec(base, sha(body)), tmp_path, client, options=QUIET)
    assert len(state.requests) == before


def test_resumes_after_a_dropped_connection(
    tmp_path: Path, site: tuple[Site, str], client: httpx.Client
) -> None:
    state, base = site
    body = model_zip()
    state.files[f"{MODEL}.zip"] = body
    state.mode = "drop_once"
    download_model(spec(base, sha(body)), tmp_path, client, options=QUIET)
    assert (tmp_path / MODEL / "conf" / "mfcc.conf").is_file()
    assert state.requests[0][1] is None
    assert state.requests[1][1] == f"bytes={len(body) // 2}-"


def test_resumes_a_part_file_left_by_an_earlier_run(
    tmp_path: Path, site: tuple[Site, str], client: httpx.Client
) -> None:
    state, base = site
    body = model_zip()
    state.files[f"{MODEL}.zip"] = body
    leave_part(tmp_path, body[:1000])
    download_model(spec(base, sha(body)), tmp_path, client, options=QUIET)
    assert state.requests == [(f"/{MODEL}.zip", "bytes=1000-")]
    assert (tmp_path / MODEL).is_dir()


def test_a_whole_part_file_is_finished_without_a_body(
    tmp_path: Path, site: tuple[Site, str], client: httpx.Client
) -> None:
    state, base = site
    body = model_zip()
    state.files[f"{MODEL}.zip"] = body
    leave_part(tmp_path, body)
    download_model(spec(base, sha(body)), tmp_path, client, options=QUIET)
    assert state.requests == [(f"/{MODEL}.zip", f"bytes={len(body)}-")]
    assert (tmp_path / MODEL).is_dir()


def test_a_server_ignoring_range_restarts_from_zero(
    tmp_path: Path, site: tuple[Site, str], client: httpx.Client
) -> None:
    state, base = site
    body = model_zip()
    state.files[f"{MODEL}.zip"] = body
    state.mode = "ignore_range"
    leave_part(tmp_path, b"stale bytes from another version")
    download_model(spec(base, sha(body)), tmp_path, client, options=QUIET)
    assert len(state.requests) == 1
    assert (tmp_path / MODEL / "am" / "final.mdl").read_bytes() == b"acoustic model " * 4000


def test_checksum_mismatch_installs_nothing(
    tmp_path: Path, site: tuple[Site, str], client: httpx.Client
) -> None:
    state, base = site
    body = model_zip()
    state.files[f"{MODEL}.zip"] = body[:-1] + bytes([body[-1] ^ 1])
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        download_model(spec(base, sha(body)), tmp_path, client, options=QUIET)
    assert not (tmp_path / MODEL).exists()
    assert list((tmp_path / ".downloads").rglob("*")) == [tmp_path / ".downloads" / MODEL]


def test_hugging_face_announced_sha256_is_checked(
    tmp_path: Path, site: tuple[Site, str], client: httpx.Client
) -> None:
    state, base = site
    body = model_zip()
    state.files[f"{MODEL}.zip"] = body
    state.headers["X-Linked-Etag"] = f'"{"0" * 64}"'
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        download_model(spec(base), tmp_path, client, options=QUIET)
    state.headers["X-Linked-Etag"] = f'"{sha(body)}"'
    assert download_model(spec(base), tmp_path, client, options=QUIET)


def test_http_error_is_a_download_error(
    tmp_path: Path, site: tuple[Site, str], client: httpx.Client
) -> None:
    _, base = site
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_model(spec(base), tmp_path, client, options=QUIET)


def test_unreachable_server_gives_up_after_retries(tmp_path: Path, client: httpx.Client) -> None:
    with pytest.raises(DownloadError, match="gave up after 4 attempts"):
        download_model(spec("http://127.0.0.1:9"), tmp_path, client, options=QUIET)


@pytest.mark.parametrize(
    "bad_member",
    ["../evil.txt", f"{MODEL}/../../evil.txt", "/tmp/evil.txt", "C:/evil.txt"],
)
def test_zip_slip_is_rejected(
    tmp_path: Path, site: tuple[Site, str], client: httpx.Client, bad_member: str
) -> None:
    state, base = site
    body = model_zip(extra={bad_member: b"owned"})
    state.files[f"{MODEL}.zip"] = body
    models = tmp_path / "models"
    with pytest.raises(DownloadError, match="refusing"):
        download_model(spec(base, sha(body)), models, client, options=QUIET)
    assert not (models / MODEL).exists()
    assert not (tmp_path / "evil.txt").exists()
    assert [p.name for p in models.iterdir()] == [".downloads"]  # no staging directory left


def test_zip_link_member_is_rejected(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo(f"{MODEL}/link")
        info.external_attr = (0o120777 << 16) | 0x10
        zf.writestr(info, "/etc/passwd")
    archive = tmp_path / "a.zip"
    archive.write_bytes(buf.getvalue())
    with pytest.raises(DownloadError, match="link member"):
        extract_zip(archive, tmp_path / "out")


def _tar(members: list[tarfile.TarInfo], data: bytes = b"x") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for info in members:
            if info.isfile():
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return buf.getvalue()


def test_tar_unsafe_members_are_rejected(tmp_path: Path) -> None:
    dotdot = tarfile.TarInfo("../evil.txt")
    link = tarfile.TarInfo(f"{MODEL}/link")
    link.type = tarfile.SYMTYPE
    link.linkname = "../../etc/passwd"
    for i, member in enumerate((dotdot, link)):
        archive = tmp_path / f"bad{i}.tar.gz"
        archive.write_bytes(_tar([member]))
        with pytest.raises(DownloadError, match="refusing"):
            extract_tar(archive, tmp_path / f"out{i}")
    assert not (tmp_path / "evil.txt").exists()


def test_tar_archive_installs(tmp_path: Path, site: tuple[Site, str], client: httpx.Client) -> None:
    state, base = site
    files = [tarfile.TarInfo(f"{MODEL}/am/final.mdl"), tarfile.TarInfo(f"{MODEL}/conf/mfcc.conf")]
    body = _tar(files)
    state.files[f"{MODEL}.zip"] = body  # the name does not decide the format; the bytes do
    download_model(spec(base, sha(body)), tmp_path, client, options=QUIET)
    assert (tmp_path / MODEL / "conf" / "mfcc.conf").read_bytes() == b"x"


def test_wrong_layout_is_rejected(
    tmp_path: Path, site: tuple[Site, str], client: httpx.Client
) -> None:
    state, base = site
    body = model_zip(top="another-model")
    state.files[f"{MODEL}.zip"] = body
    with pytest.raises(DownloadError, match="expected one top-level directory"):
        download_model(spec(base, sha(body)), tmp_path, client, options=QUIET)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{MODEL}/am/final.mdl", b"only half a model")
    state.files[f"{MODEL}.zip"] = buf.getvalue()
    with pytest.raises(DownloadError, match=r"missing conf/mfcc\.conf"):
        download_model(spec(base), tmp_path, client, options=QUIET)
    assert not (tmp_path / MODEL).exists()


def test_force_replaces_an_installed_model(
    tmp_path: Path, site: tuple[Site, str], client: httpx.Client
) -> None:
    state, base = site
    old = tmp_path / MODEL
    (old / "am").mkdir(parents=True)
    (old / "am" / "final.mdl").write_bytes(b"old")
    (old / "conf").mkdir()
    (old / "conf" / "mfcc.conf").write_bytes(b"old")
    body = model_zip()
    state.files[f"{MODEL}.zip"] = body
    assert download_model(spec(base, sha(body)), tmp_path, client, force=True, options=QUIET)
    assert (old / "am" / "final.mdl").read_bytes() != b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [MODEL]


def test_plain_files_model_installs_into_its_directory(
    tmp_path: Path, site: tuple[Site, str], client: httpx.Client
) -> None:
    state, base = site
    for f in manifest.XTTS_V2.files:
        state.files[f.name] = f"contents of {f.name}".encode()
    assert download_model(manifest.XTTS_V2, tmp_path, client, base_url=base, options=QUIET)
    final = tmp_path / "tts" / "tts_models--multilingual--multi-dataset--xtts_v2"
    assert sorted(p.name for p in final.iterdir()) == sorted(f.name for f in manifest.XTTS_V2.files)
    assert not (tmp_path / ".downloads").exists()


def test_cli_downloads_the_alternative_vosk_model(
    tmp_path: Path, site: tuple[Site, str], capsys: pytest.CaptureFixture[str]
) -> None:
    state, base = site
    name = manifest.VOSK_AR_MGB2.name
    body = model_zip(top=name)
    state.files[f"{name}.zip"] = body
    argv = [name, "--models-dir", str(tmp_path), "--url", base, "--timeout", "2"]
    assert main([*argv, "--sha256", sha(body)]) == 0
    assert (tmp_path / name / "am" / "final.mdl").is_file()
    assert main(argv) == 0
    assert "already present" in capsys.readouterr().err
    assert len(state.requests) == 1


def test_cli_reports_errors_with_status_1(
    tmp_path: Path, site: tuple[Site, str], capsys: pytest.CaptureFixture[str]
) -> None:
    state, base = site
    name = manifest.VOSK_AR_MGB2.name
    state.files[f"{name}.zip"] = model_zip(top=name)
    argv = [name, "--models-dir", str(tmp_path), "--url", base, "--no-progress"]
    assert main([*argv, "--sha256", "ab" * 32, "--retries", "0"]) == 1
    assert "sha256 mismatch" in capsys.readouterr().err
    assert main([*argv, "--sha256", "not-hex"]) == 1
    assert main(["tts", "--models-dir", str(tmp_path), "--sha256", "ab" * 32]) == 1
    assert "exactly one file" in capsys.readouterr().err
    assert not (tmp_path / name).exists()


def test_manifest_groups_resolve() -> None:
    assert [m.name for m in manifest.resolve("all")] == [
        "vosk-model-ar-0.22-linto-1.1.0",
        "xtts_v2",
    ]
    assert manifest.resolve("stt") == (manifest.VOSK_AR_LINTO,)
    assert manifest.XTTS_V2.url_for(manifest.XTTS_V2.files[2]) == (
        "https://huggingface.co/coqui/XTTS-v2/resolve/main/model.pth"
    )
