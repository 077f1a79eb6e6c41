"""``python -m local_stack up|down|status|env``: run the local stack in the background.

- ``up``: start the three emulators, write ``<state dir>/env``; if a stack already runs there,
  say so and do nothing (exit 0).
- ``down``: stop exactly the processes ``up`` started; remove the state and env files.
- ``status``: print what runs (exit 0 when the whole stack runs, 3 otherwise).
- ``env``: print ``export KEY='value'`` lines, for ``eval "$(python -m local_stack env)"``.

The state directory is ``$LOCAL_STACK_DIR`` or ``.local-stack`` at the repository root.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from local_stack.envfile import format_env
from local_stack.processes import ProcessStartError
from local_stack.stack import (
    START_TIMEOUT_S,
    RunningStack,
    StackAlreadyRunning,
    default_state_dir,
    load_env,
    start,
)

EXIT_NOT_RUNNING = 3


def _describe(stack: RunningStack) -> str:
    endpoints = stack.endpoints
    urls = {"gcs": endpoints.storage_url, "bigquery": endpoints.bigquery_url, "gemini": endpoints.gemini_url}
    lines = []
    for proc in stack.processes:
        state = "running" if proc.is_ours() else "not running"
        lines.append(
            f"  {proc.name:<9} {state:<12} pid {proc.pid:<7} {urls.get(proc.name, '')}  log {proc.log_file}"
        )
    return "\n".join(lines)


def cmd_up(state_dir: Path, ephemeral: bool, timeout: float) -> int:
    """Start the stack unless one runs from ``state_dir``."""
    try:
        stack = start(state_dir, ephemeral=ephemeral, timeout=timeout)
    except StackAlreadyRunning as running:
        print(f"local stack already running from {state_dir}; nothing to do.")
        print(_describe(running.stack))
        print(f"env file: {running.stack.env_file}")
        return 0
    except ProcessStartError as err:
        print(f"local stack failed to start: {err}", file=sys.stderr)
        return 1
    print(f"local stack up in {stack.startup_s:.2f} s:")
    print(_describe(stack))
    print(f"env file: {stack.env_file}")
    print(f"  load it with: set -a; . {stack.env_file}; set +a")
    print("stop it with: python -m local_stack down   (or: make stack-down)")
    return 0


def cmd_down(state_dir: Path) -> int:
    """Stop the stack recorded in ``state_dir``, if any."""
    stack = RunningStack.attach(state_dir)
    if stack is None:
        print(f"no local stack recorded in {state_dir}; nothing to stop.")
        return 0
    stopped = stack.stop()
    if stopped:
        print(f"local stack stopped: {', '.join(stopped)}.")
    else:
        print("local stack was not running any more; removed its state file.")
    return 0


def cmd_status(state_dir: Path) -> int:
    """Print what runs from ``state_dir``."""
    stack = RunningStack.attach(state_dir)
    if stack is None:
        print(f"local stack: not running (no state file in {state_dir}).")
        return EXIT_NOT_RUNNING
    running = stack.is_running()
    print(f"local stack: {'running' if running else 'NOT fully running'} from {state_dir}")
    print(_describe(stack))
    if running:
        print(f"env file: {stack.env_file}")
    return 0 if running else EXIT_NOT_RUNNING


def cmd_env(state_dir: Path) -> int:
    """Print the env file as ``export`` lines."""
    try:
        env = load_env(state_dir)
    except FileNotFoundError as err:
        print(str(err), file=sys.stderr)
        return EXIT_NOT_RUNNING
    sys.stdout.write(format_env(env, export=True))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m local_stack", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="state directory (default: $LOCAL_STACK_DIR or <repo>/.local-stack)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the stack in the background")
    up.add_argument("--ephemeral", action="store_true", help="keep BigQuery data in memory only")
    up.add_argument(
        "--timeout",
        type=float,
        default=START_TIMEOUT_S,
        help=f"seconds to wait for all to answer (default: $LOCAL_STACK_START_TIMEOUT or {START_TIMEOUT_S:g})",
    )
    commands.add_parser("down", help="stop the stack")
    commands.add_parser("status", help="print what runs")
    commands.add_parser("env", help="print export lines for the running stack")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m local_stack``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="local_stack: %(message)s",
    )
    state_dir = (args.state_dir or default_state_dir()).resolve()
    if args.command == "up":
        return cmd_up(state_dir, args.ephemeral, args.timeout)
    if args.command == "down":
        return cmd_down(state_dir)
    if args.command == "status":
        return cmd_status(state_dir)
    return cmd_env(state_dir)


if __name__ == "__main__":
    sys.exit(main())
