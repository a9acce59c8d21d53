"""``python -m vccsim``: serve the simulator over HTTP until Ctrl-C."""

from __future__ import annotations

import argparse
import json
import threading
from dataclasses import replace

from vccsim.clock import Clock
from vccsim.server import start_server
from vccsim.simulator import Simulator
from vccsim.state import load_account


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vccsim", description="Serve a stand-in for VCC's APIs.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--account", help="account file (default: the sample account shipped with vccsim)")
    parser.add_argument("--account-key", help="override the account key the file sets")
    parser.add_argument("--api-token", help="override the API authentication token the file sets")
    parser.add_argument("--speed", type=float, default=1.0, help="clock speed: 60 makes a minute last a second")
    parser.add_argument("--faults", type=json.loads, help="start-up faults as JSON, as in an account file")
    parser.add_argument(
        "--fair-use-limit",
        type=_fair_use_limit,
        default=argparse.SUPPRESS,
        metavar="N|off",
        help="requests a minute before 429s (default: the account file's, else VCC's 160); off: no limit",
    )
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    args = parser.parse_args(argv)

    account = load_account(args.account, account_key=args.account_key, api_token=args.api_token)
    if args.faults:
        account = replace(account, faults={**account.faults, **args.faults})
    if "fair_use_limit" in args:
        account = replace(account, fair_use_limit=args.fair_use_limit)
    server = start_server(
        Simulator(account, clock=Clock(speed=args.speed)), host=args.host, port=args.port, log=not args.quiet
    )
    print(f"vccsim serving {server.base_url} for account key {account.account_key} (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def _fair_use_limit(value: str) -> int | None:
    if value == "off":
        return None
    if not value.isascii() or not value.isdigit():
        raise argparse.ArgumentTypeError(f"give a whole number of requests a minute, or off, not {value!r}")
    return int(value)


if __name__ == "__main__":
    main()
