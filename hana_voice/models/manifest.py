"""The models the service can download: where from, where to, and how to tell they are whole.

Checksums: no sha256 or exact byte size is pinned here yet, because none could be verified
from this build environment (the hosts are unreachable from it) and an unverified pin is worse
than none. Until then a download is checked by (1) the byte count the server announced, (2) the
sha256 Hugging Face announces for LFS files in its ``X-Linked-Etag`` header (XTTS weights), (3)
an operator's ``--sha256``, and (4) the archive's integrity (zip CRCs) and the expected layout.
To pin one, fill ``sha256``/``size`` below from a trusted download (``sha256sum FILE``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ModelKind = Literal["stt", "tts"]
GIB = 1024**3

VOSK_BASE = "https://alphacephei.com/vosk/models"
#: Pinned to ``main`` as the deployment guide does; the repository has changed config.json
#: in the past, which is one reason the size and sha256 are taken from Hugging Face's headers.
XTTS_BASE = "https://huggingface.co/coqui/XTTS-v2/resolve/main"


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch. ``size`` and ``sha256`` are checked when not None."""

    name: str
    approx_size: str
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A model: its files and the directory they become under the models directory.

    ``archive`` models have a single zip or tar file whose one top-level directory is named
    like ``target``'s last part; plain models (XTTS) are a set of files put into ``target``.
    ``required`` lists groups of paths inside the installed directory; each group needs one.
    ``max_unpacked_bytes`` bounds what installing may write (the archive's members, or the
    plain files): an archive that would unpack to more is refused before and while unpacking.
    """

    name: str
    kind: ModelKind
    base_url: str
    files: tuple[RemoteFile, ...]
    target: str
    archive: bool
    required: tuple[tuple[str, ...], ...]
    licence: str
    description: str
    max_unpacked_bytes: int

    def url_for(self, file: RemoteFile, base_url: str | None = None) -> str:
        return f"{(base_url or self.base_url).rstrip('/')}/{file.name}"


# Vosk loads a model in either layout: v2 keeps the acoustic model in am/, v1 at the top.
_VOSK_REQUIRED = (("am/final.mdl", "final.mdl"), ("conf/mfcc.conf", "mfcc.conf"))


def _vosk(name: str, size: str, description: str, max_unpacked_bytes: int) -> ModelSpec:
    """A Vosk model: one zip named for the model, unpacked into a folder of the same name."""
    return ModelSpec(
        name=name,
        kind="stt",
        base_url=VOSK_BASE,
        files=(RemoteFile(f"{name}.zip", size),),
        target=name,
        archive=True,
        required=_VOSK_REQUIRED,
        licence="Apache-2.0",
        description=description,
        max_unpacked_bytes=max_unpacked_bytes,
    )


VOSK_AR_LINTO = _vosk(
    "vosk-model-ar-0.22-linto-1.1.0",
    "1.3 GB",
    "Vosk Arabic (LINTO 1.1.0), the deployment guide's model",
    # A 1.3 GB zip of Kaldi graphs, which compress little: a generous ceiling, not a pin.
    max_unpacked_bytes=6 * GIB,
)

VOSK_AR_MGB2 = _vosk(
    "vosk-model-ar-mgb2-0.4",
    "318 MB",
    "Vosk Arabic (MGB-2), smaller alternative; WER 16.4 on MGB-2 dev",
    max_unpacked_bytes=2 * GIB,
)

_XTTS_FILES = (
    RemoteFile("config.json", "5 kB"),
    RemoteFile("vocab.json", "360 kB"),
    RemoteFile("model.pth", "1.9 GB"),
    RemoteFile("dvae.pth", "210 MB"),
    RemoteFile("mel_stats.pth", "1 kB"),
    RemoteFile("speakers_xtts.pth", "8 MB"),
)

XTTS_V2 = ModelSpec(
    name="xtts_v2",
    kind="tts",
    base_url=XTTS_BASE,
    files=_XTTS_FILES,
    target="tts/tts_models--multilingual--multi-dataset--xtts_v2",
    archive=False,
    required=tuple((f.name,) for f in _XTTS_FILES),
    licence="Coqui Public Model License 1.0.0 (non-commercial use only)",
    description="Coqui XTTS v2 weights from Hugging Face (coqui/XTTS-v2)",
    max_unpacked_bytes=4 * GIB,
)

MODELS: dict[str, ModelSpec] = {m.name: m for m in (VOSK_AR_LINTO, VOSK_AR_MGB2, XTTS_V2)}

#: What ``hana-voice models download stt|tts|all`` fetches.
GROUPS: dict[str, tuple[str, ...]] = {
    "stt": (VOSK_AR_LINTO.name,),
    "tts": (XTTS_V2.name,),
    "all": (VOSK_AR_LINTO.name, XTTS_V2.name),
}


def resolve(selection: str) -> tuple[ModelSpec, ...]:
    """Models for a group name (stt, tts, all) or one model's name; KeyError if unknown."""
    names = GROUPS.get(selection, (selection,))
    return tuple(MODELS[name] for name in names)


def choices() -> tuple[str, ...]:
    return (*GROUPS, *MODELS)
