"""``python -m local_stack.emulator``: run the Gemini batch emulator in the foreground.

Invariants: SIGTERM and SIGINT stop it cleanly (running jobs keep their saved state and resume
at the next start); it prints one ``listening on http://host:port`` line once it accepts
connections (useful with ``--port 0``). The Gemini API key it accepts never comes from the
command line (which every user sees in ``ps``): it is read from ``--api-key-file``, else from
``$GEMINI_EMULATOR_API_KEY``, else it is the local default :data:`DEFAULT_API_KEY`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from aiohttp import web

from .app import create_app
from .service import Settings

#: The environment variable holding the API key (when no ``--api-key-file`` is given).
API_KEY_ENV = "GEMINI_EMULATOR_API_KEY"
DEFAULT_API_KEY = "local-gemini-api-key"


def api_key_from(key_file: Path | None, environ: dict[str, str]) -> str:
    """The API key: the first line of ``key_file``, else ``environ[API_KEY_ENV]``, else the default.

    :raises SystemExit: the file is missing or holds no key.
    """
    if key_file is not None:
        try:
            key = key_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SystemExit(f"cannot read the API key file {key_file}: {exc.strerror}") from exc
        if not key:
            raise SystemExit(f"the API key file {key_file} is empty")
        return key
    return environ.get(API_KEY_ENV) or DEFAULT_API_KEY


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m local_stack.emulator",
        description="Gemini batch emulator: Vertex AI batchPredictionJobs, Gemini API batches, Files API.",
        allow_abbrev=False,  # else ``--api-key SECRET`` would pass as ``--api-key-file``
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089, help="0 picks a free port")
    parser.add_argument("--state-dir", type=Path, required=True, help="where jobs and files are kept")
    parser.add_argument("--project", default="local-project")
    parser.add_argument("--location", default="us-central1")
    parser.add_argument(
        "--api-key-file",
        type=Path,
        default=None,
        help=f"file holding the Gemini API key to accept (else ${API_KEY_ENV}, else {DEFAULT_API_KEY!r})",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--access-log", action="store_true", help="log every request")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Run until SIGTERM or SIGINT."""
    settings = Settings(
        state_dir=args.state_dir,
        project=args.project,
        location=args.location,
        api_key=api_key_from(args.api_key_file, dict(os.environ)),
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
    os.umask(0o077)  # its state (jobs, prompts, answers, files) is its owner's only
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
