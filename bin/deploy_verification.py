#!/usr/bin/env python3
"""Verify a deployed Hana Voice service: bin/deploy_verification.py URL [--json] [--secret S]
[--maqsam-token T]. Exit 0 all passed, 1 partly (warnings, degraded, skipped), 2 failed.

Runs with `uv run bin/deploy_verification.py URL` or `.venv/bin/python bin/deploy_verification.py
URL`; see docs/verification.md.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run from a checkout without installing: the package sits next to bin/.
sys.path.insert(0, str(ROOT))

try:
    from hana_voice.verification.verify import main
except ModuleNotFoundError:
    # Started by a bare python3: run again under the project's virtual environment.
    venv_python = ROOT / ".venv" / "bin" / "python"
    if not venv_python.exists() or os.environ.get("HANA_VOICE_REEXEC"):
        raise
    os.environ["HANA_VOICE_REEXEC"] = "1"
    os.execv(venv_python, [str(venv_python), __file__, *sys.argv[1:]])

if __name__ == "__main__":
    sys.exit(main())
