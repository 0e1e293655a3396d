"""``python -m tests.e2b_server``: serve a local E2B-compatible API by hand.

    python -m tests.e2b_server --port 3000 [--api-key KEY] [--root DIR] [--isolation auto]

It prints the environment variables that point the ``e2b`` SDK (or ``parallelcc_sdk``'s E2B
backend) at it, then serves until Ctrl-C, which kills every sandbox.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from .server import E2BTestServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.e2b_server", description="A local E2B-compatible server."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=3000, help="port (0: any free port)")
    parser.add_argument("--api-key", help="the API key clients must send (default: random)")
    parser.add_argument("--root", type=Path, help="folder for the sandboxes (default: temporary)")
    parser.add_argument(
        "--isolation",
        choices=["auto", "bubblewrap", "none"],
        default="auto",
        help="run commands under bubblewrap (auto: when it works here)",
    )
    parser.add_argument(
        "--keep-killed", action="store_true", help="keep the folders of ended sandboxes"
    )
    args = parser.parse_args(argv)
    server = E2BTestServer(
        args.root,
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        isolation=args.isolation,
        retain_killed=args.keep_killed,
    )
    print(f"Local E2B server on {server.url} (sandboxes in {server.root}, {server.isolation})")
    print("Point the e2b SDK at it with:")
    for name, value in server.env.items():
        print(f"  export {name}={value}")
    # uvicorn re-raises Ctrl-C after its clean shutdown; the sandboxes are gone by then.
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
