"""Command line entry point: ``python -m pbo_emulator --port 4566``."""

import argparse
import os
import threading
import time

from werkzeug.serving import run_simple

from .app import EmulatorApp


def main() -> None:
    parser = argparse.ArgumentParser(description="partner-billing-operator AWS emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="exit when the process that started the emulator goes away (used by the test harness)",
    )
    parser.add_argument(
        "--smtp-port",
        type=int,
        default=0,
        help="also run an SMTP server on this port; received mail is listed at /_emulator/mail",
    )
    args = parser.parse_args()
    if args.exit_with_parent:
        _watch_parent(os.getppid())
    app = EmulatorApp()
    if args.smtp_port:
        app.start_smtp(args.host, args.smtp_port)
    run_simple(args.host, args.port, app, threaded=True, request_handler=app.request_handler)


def _watch_parent(parent: int) -> None:
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


if __name__ == "__main__":
    main()
