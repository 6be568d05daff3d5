"""Run a `handover` command under cProfile, every thread included; pstats to PATH at exit.

    .venv/bin/python bench/profiled.py PATH serve --port 8000 [--workers 1]

The main thread (uvicorn's event loop: the async routes) has one profile; each thread
started later (the thread pool that runs the sync routes, the check index's refresher)
gets its own from `threading.setprofile`, and they are merged into one file when the
command ends (on SIGTERM, once uvicorn has shut down). Only the first process is
profiled, so use one worker. cProfile slows Python code down about twofold: read the
shares, not the absolute times. `bench/load.py --profile PATH` starts the server this way.
"""

from __future__ import annotations

import cProfile
import pstats
import signal
import sys
import threading
from typing import Any


def main() -> None:
    path, arguments = sys.argv[1], sys.argv[2:]
    profiles: list[cProfile.Profile] = []

    def profile_this_thread(*_: Any) -> None:
        # First call in a new thread: from here on that thread's own profiler runs.
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()

    def finish(signum: int, _: Any) -> None:
        # uvicorn shuts down on SIGTERM, then raises it again with this handler back.
        raise SystemExit(128 + signum)

    from handover.cli import app

    signal.signal(signal.SIGTERM, finish)
    threading.setprofile(profile_this_thread)
    main_profile = cProfile.Profile()
    main_profile.enable()
    try:
        app(arguments, prog_name="handover")
    finally:
        main_profile.disable()
        threading.setprofile(None)
        stats = pstats.Stats(main_profile)
        for profile in profiles:
            stats.add(profile)
        stats.dump_stats(path)


if __name__ == "__main__":
    main()
