"""The unpacker's size ceiling (issue 11): an archive that unpacks past the manifest's
``max_unpacked_bytes`` is refused, and nothing is left where the service looks for models."""

from __future__ import annotations

import io
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest

from hana_voice.errors import DownloadError
from hana_voice.models import manifest
from hana_voice.models.unpack import extract_zip, install_archive, install_files

MODEL = "vosk-model-test-0.1"
REQUIRED = (("am/final.mdl",),)
MB = 1024 * 1024


def bomb_zip(path: Path, megabytes: int) -> Path:
    """A small zip (zeros compress ~1000:1) that unpacks to ``megabytes`` MiB."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{MODEL}/am/final.mdl", b"model")
        zf.writestr(f"{MODEL}/graph/HCLG.fst", bytes(megabytes * MB))
    return path


def test_zip_over_the_ceiling_is_refused_before_writing(tmp_path: Path) -> None:
    archive = bomb_zip(tmp_path / "bomb.zip", 20)
    assert archive.stat().st_size < MB
    final = tmp_path / "models" / MODEL
    with pytest.raises(DownloadError, match="more than the 10485760 bytes allowed"):
        install_archive(archive, final, REQUIRED, max_bytes=10 * MB)
    assert not final.exists()
    assert list(final.parent.iterdir()) == [], "no staging directory left"


def test_zip_under_the_ceiling_installs(tmp_path: Path) -> None:
    archive = bomb_zip(tmp_path / "ok.zip", 5)
    final = tmp_path / "models" / MODEL
    install_archive(archive, final, REQUIRED, max_bytes=10 * MB)
    assert (final / "graph" / "HCLG.fst").stat().st_size == 5 * MB


def test_zip_member_lying_about_its_size_is_refused(tmp_path: Path) -> None:
    """A header that declares 1 KiB for 20 MiB of data passes the sum check, not extraction."""
    archive = bomb_zip(tmp_path / "liar.zip", 20)
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo(f"{MODEL}/graph/HCLG.fst")
    # Uncompressed size: local header offset 22, central directory entry offset 24.
    struct.pack_into("<I", data, info.header_offset + 22, 1024)
    central = data.rfind(b"PK\x01\x02")
    while central != -1:
        name_len = struct.unpack_from("<H", data, central + 28)[0]
        if data[central + 46 : central + 46 + name_len].endswith(b"HCLG.fst"):
            struct.pack_into("<I", data, central + 24, 1024)
        central = data.rfind(b"PK\x01\x02", 0, central)
    archive.write_bytes(bytes(data))
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(DownloadError):
        extract_zip(archive, dest, max_bytes=10 * MB)
    written = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    assert written <= 10 * MB


def test_tar_over_the_ceiling_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for name, size in ((f"{MODEL}/am/final.mdl", 5), (f"{MODEL}/graph/HCLG.fst", 20 * MB)):
            info = tarfile.TarInfo(name)
            info.size = size
            tf.addfile(info, io.BytesIO(bytes(size)))
    final = tmp_path / "models" / MODEL
    with pytest.raises(DownloadError, match="more than"):
        install_archive(archive, final, REQUIRED, max_bytes=10 * MB)
    assert not final.exists()


def test_plain_files_over_the_ceiling_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "model.pth"
    big.write_bytes(bytes(2 * MB))
    final = tmp_path / "models" / "xtts"
    with pytest.raises(DownloadError, match="more than"):
        install_files([big], final, (("model.pth",),), max_bytes=MB)
    assert big.exists() and not final.exists(), "the download stays for a retry elsewhere"


def test_every_manifest_model_has_a_ceiling_above_its_download() -> None:
    for spec in manifest.MODELS.values():
        approx = 0.0
        for file in spec.files:
            number, _, unit = file.approx_size.partition(" ")
            approx += float(number) * {"kB": 1e3, "MB": 1e6, "GB": 1e9}[unit]
        assert approx < spec.max_unpacked_bytes < 8 * 1024**3, spec.name


def test_download_applies_the_manifest_ceiling(tmp_path: Path) -> None:
    from dataclasses import replace

    from hana_voice.models.download import download_model, make_client
    from hana_voice.models.fetch import FetchOptions
    from tests.models.mirror import Mirror, serve_mirror

    spec = replace(
        manifest.VOSK_AR_MGB2,
        name=MODEL,
        target=MODEL,
        files=(manifest.RemoteFile(f"{MODEL}.zip", "1 MB"),),
        required=REQUIRED,
        max_unpacked_bytes=10 * MB,
    )
    archive = bomb_zip(tmp_path / f"{MODEL}.zip", 20)
    models = tmp_path / "models"
    with (
        serve_mirror(Mirror(files={archive.name: archive})) as mirror,
        make_client(2.0) as client,
        pytest.raises(DownloadError, match="allowed for this model"),
    ):
        download_model(spec, models, client, base_url=mirror.url, options=FetchOptions(0, 0, False))
    assert not (models / MODEL).exists()
    assert not list((models / ".downloads").rglob("*.zip")), "refused bytes are not kept"
