"""``python -m local_stack.emulator``: run the Gemini batch emulator in the foreground.

Invariant: SIGTERM and SIGINT stop it cleanly (running jobs keep their saved state and resume
at the next start); it prints one ``listening on http://host:port`` line once it accepts
connections (useful with ``--port 0``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from aiohttp import web

from .app import create_app
from .service import Settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m local_stack.emulator",
        description="Gemini batch emulator: Vertex AI batchPredictionJobs, Gemini API batches, Files API.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089, help="0 picks a free port")
    parser.add_argument("--state-dir", type=Path, required=True, help="where jobs and files are kept")
    parser.add_argument("--project", default="local-project")
    parser.add_argument("--location", default="us-central1")
    parser.add_argument("--api-key", default="local-gemini-api-key")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--access-log", action="store_true", help="log every request")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Run until SIGTERM or SIGINT."""
    settings = Settings(
        state_dir=args.state_dir, project=args.project, location=args.location, api_key=args.api_key
    )
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=logging.getLogger("aiohttp.access") if args.access_log else None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, backlog=4096, reuse_address=True)
    await site.start()
    port = runner.addresses[0][1] if runner.addresses else args.port
    print(f"gemini-batch-emulator listening on http://{args.host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        import uvloop  # optional: faster event loop when installed
    except ImportError:
        asyncio.run(serve(args))
    else:
        uvloop.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
