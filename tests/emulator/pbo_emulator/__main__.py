"""Command line entry point: ``python -m pbo_emulator --port 4566``."""

import argparse

from werkzeug.serving import run_simple

from .app import EmulatorApp


def main() -> None:
    parser = argparse.ArgumentParser(description="partner-billing-operator AWS emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    args = parser.parse_args()
    app = EmulatorApp()
    run_simple(args.host, args.port, app, threaded=True, request_handler=app.request_handler)


if __name__ == "__main__":
    main()
