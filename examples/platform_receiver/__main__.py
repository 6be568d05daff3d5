"""`python -m examples.platform_receiver --issuer URL --client-id ID --client-secret S`."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

from examples.platform_receiver.app import OUTCOMES, Settings, run

from handover.receiver.events import NUMBER_EVENTS


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m examples.platform_receiver",
        description="A platform receiving Handover's Security Event Tokens.",
    )
    parser.add_argument(
        "--issuer", required=True, help="the transmitter, e.g. http://127.0.0.1:8000"
    )
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--mode", choices=["push", "poll"], default="push")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--db", type=Path, default=Path("receiver.db"))
    parser.add_argument("--events", nargs="+", default=list(NUMBER_EVENTS), metavar="URI")
    parser.add_argument("--keep-stream", action="store_true", help="do not delete it on exit")
    parser.add_argument(
        "--answer",
        choices=[*OUTCOMES, "off"],
        default="off",
        help="answer every case-opened event at once with this outcome (default: off)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    stop = threading.Event()
    # Stop cleanly on SIGTERM too: send the last acknowledgements, delete the stream.
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    run(
        Settings(
            issuer=args.issuer,
            client_id=args.client_id,
            client_secret=args.client_secret,
            mode=args.mode,
            host=args.host,
            port=args.port,
            db=args.db,
            events=tuple(args.events),
            keep_stream=args.keep_stream,
            answer=None if args.answer == "off" else args.answer,
        ),
        stop,
    )


if __name__ == "__main__":
    main()
