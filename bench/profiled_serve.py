"""``hana-voice serve`` with cProfile switched on and off by signals, for bench_peer.py.

SIGUSR1 starts a deterministic profile of the event-loop thread, SIGUSR2 stops it and writes
it to ``$HANA_PROFILE_OUT`` (a pstats file), so a profile covers a load window only, not the
start-up (imports, model loading). Everything else is the ordinary command.
"""

from __future__ import annotations

import cProfile
import os
import signal
import sys
from types import FrameType

profile: cProfile.Profile | None = None


def start(signum: int, frame: FrameType | None) -> None:
    global profile
    profile = cProfile.Profile()
    profile.enable()


def stop(signum: int, frame: FrameType | None) -> None:
    global profile
    if profile is not None:
        profile.disable()
        profile.dump_stats(os.environ["HANA_PROFILE_OUT"])
        profile = None


if __name__ == "__main__":
    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    from hana_voice.cli import main

    sys.argv = ["hana-voice", "serve"]
    main()
