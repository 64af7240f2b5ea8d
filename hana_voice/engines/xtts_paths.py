"""Where an XTTS v2 model lives on disk (importable without torch or coqui-tts)."""

from __future__ import annotations

from pathlib import Path


def resolve_xtts_dir(tts_model_name: str, models_dir: Path) -> Path:
    """Map TTS_MODEL_NAME to a directory.

    A Coqui model name such as ``tts_models/multilingual/multi-dataset/xtts_v2`` resolves to
    the layout of the deployment guide, ``<models_dir>/tts/tts_models--multilingual--
    multi-dataset--xtts_v2``; anything that names an existing directory (or starts with
    ``/``, ``./`` or ``~``) is taken as an explicit path.
    """
    candidate = Path(tts_model_name).expanduser()
    if candidate.is_dir() or tts_model_name.startswith(("/", "./", "../", "~")):
        return candidate
    return models_dir / "tts" / tts_model_name.strip("/").replace("/", "--")
