#!/usr/bin/env bash
# `make airflow`: the local stack plus `airflow standalone` serving our DAGs at 127.0.0.1:8080 (or
# a free port when 8080 is taken), on a PostgreSQL metadata database of its own. Login: admin /
# admin (only this machine can reach it). New DAG files are picked up within seconds; the ad hoc,
# summary and cancel-sweep DAGs start unpaused, the scheduled ones paused (unpause them in the UI).
# Every server it starts binds 127.0.0.1 on a free port (API, worker and triggerer log servers,
# PostgreSQL), so a second Airflow on the machine does not break this one. Ctrl-C stops every
# process this script started (Airflow's process group, then PostgreSQL, then the local stack).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
venv="$root/.venv"
export PATH="$venv/bin:$PATH"
export PYTHONPATH="$root/plugins:$root/include:$root/dags"

started_stack=0
if ! python -m local_stack status >/dev/null 2>&1; then
  python -m local_stack up
  started_stack=1
fi
set -a
# shellcheck disable=SC1091
. "${LOCAL_STACK_DIR:-$root/.local-stack}/env"
set +a
# Sample prompts for yesterday and today (idempotent), so every DAG has input from the UI.
python -m local_stack.seed --rows 100 --date "$(date -u -d yesterday +%F)" --days 2
# A human pace: each row takes GEMINI_BATCH_LOCAL_ROW_MS (default 300 ms) in the Gemini emulator, so a
# job of the sample data visibly runs for a while and its progress lines show in the task log (the
# emulator's own default, used by the tests, is 0). 0 runs jobs at full speed.
python -c 'import sys; from local_stack.admin import AdminClient; AdminClient().set_faults(row_latency_ms=float(sys.argv[1]))' \
  "${GEMINI_BATCH_LOCAL_ROW_MS:-300}"

export AIRFLOW_HOME="${AIRFLOW_HOME:-$root/.airflow/standalone}"
mkdir -p "$AIRFLOW_HOME"
AIRFLOW_HOME="$(cd "$AIRFLOW_HOME" && pwd)"  # absolute: the database folder and the logs are under it
# The metadata database: PostgreSQL (from the machine's packages), started here on a free port and
# stopped on exit; its data stays in $AIRFLOW_HOME/postgres. Not SQLite: the API server's audit log
# commits on its event loop, which deadlocks against SQLite's one write lock and answers a click
# with 500 "Database error" (include/local_stack/postgres.py says how). Set
# AIRFLOW__DATABASE__SQL_ALCHEMY_CONN to use a database of your own instead.
started_postgres=0
export AIRFLOW__CORE__DAGS_FOLDER="$root/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$root/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
# Every Airflow process writes its log lines as they happen (standalone reads them through pipes).
export PYTHONUNBUFFERED=1
export GEMINI_BATCH_POLL_INTERVAL="${GEMINI_BATCH_POLL_INTERVAL:-2}"
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:-5}"
export AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="${AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL:-5}"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:-admin:admin}"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$AIRFLOW_HOME/passwords.json"
# A free port: the one asked for when it is free, else one the kernel picks.
free_port() {
  python - "$1" <<'PY'
import socket, sys
wanted = int(sys.argv[1])
for port in (wanted, 0):
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        print(sock.getsockname()[1])
        break
PY
}
export AIRFLOW__API__HOST="${AIRFLOW__API__HOST:-127.0.0.1}"
export AIRFLOW__API__PORT="${AIRFLOW__API__PORT:-$(free_port 8080)}"
export AIRFLOW__API__BASE_URL="${AIRFLOW__API__BASE_URL:-http://127.0.0.1:$AIRFLOW__API__PORT}"
export AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT="${AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT:-$(free_port 0)}"
export AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT="${AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT:-$(free_port 0)}"
[ -f "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" ] || echo '{"admin": "admin"}' > "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"

# Wait up to $1 seconds for Airflow (standalone, which waits for its components) to exit.
wait_for_airflow() {
  local _
  for _ in $(seq 1 $(($1 * 5))); do kill -0 "$airflow_pid" 2>/dev/null || return 0; sleep 0.2; done
}

stop() {
  trap - INT TERM EXIT
  if [ -n "${airflow_pid:-}" ] && kill -0 "$airflow_pid" 2>/dev/null; then
    echo "Stopping Airflow..."
    kill -INT -- "-$airflow_pid" 2>/dev/null || true
    wait_for_airflow 10
    # Airflow's scheduler can hang in its own exit, waiting for its LocalExecutor workers, which
    # ignore SIGINT (standalone's SIGTERM to the scheduler races its shutdown); SIGTERM ends them.
    if kill -0 "$airflow_pid" 2>/dev/null; then
      echo "Airflow still runs after 10 s: SIGTERM to its process group."
      kill -TERM -- "-$airflow_pid" 2>/dev/null || true
      wait_for_airflow 20
    fi
    if kill -0 "$airflow_pid" 2>/dev/null; then
      echo "Airflow did not stop within 30 s: SIGKILL to its process group, where these still ran:"
      pgrep -a -g "$airflow_pid" | cut -c1-160 || true
    else
      echo "Airflow stopped."
    fi
    kill -KILL -- "-$airflow_pid" 2>/dev/null || true
  fi
  if [ "$started_postgres" = 1 ]; then python -m local_stack.postgres stop "$AIRFLOW_HOME"; fi
  if [ "$started_stack" = 1 ]; then python -m local_stack down; fi
}
trap stop INT TERM EXIT
if [ -z "${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-}" ]; then
  "$root/include/dev/system_packages.sh" postgresql  # installs PostgreSQL when missing (Debian, Ubuntu)
  started_postgres=1
  AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="$(python -m local_stack.postgres start "$AIRFLOW_HOME")"
  export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
fi

echo "Airflow UI: $AIRFLOW__API__BASE_URL  (login admin / admin; gemini_batch_adhoc is ready: Trigger it. Scheduled DAGs start paused)."
echo "Gemini batch view: $AIRFLOW__API__BASE_URL/plugin/gemini-batch  (Browse > Gemini batch). Ctrl-C stops everything."
set -m
airflow standalone &
airflow_pid=$!
set +m
wait "$airflow_pid" || true
