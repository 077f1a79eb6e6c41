#!/usr/bin/env bash
# Installs the Debian packages the tests need, when missing: `make test` calls it, so a fresh
# machine needs nothing by hand; `make airflow` calls it with `postgresql` only (its metadata
# database). Each package is named with what proves it is there: a command on PATH, or an absolute
# path pattern (Debian keeps PostgreSQL's server programs off PATH), or either of two (`a|b`).
# Usage: system_packages.sh [package ...]  (no argument: all of them).
# Idempotent and quiet when everything is present; apt-get runs only for what is missing (as root,
# or through sudo when there is one).
set -euo pipefail

# probe  package
required=(
  "docker-compose docker-compose"                   # validates docker-compose.yaml (`docker-compose config`)
  "initdb|/usr/lib/postgresql/*/bin/initdb postgresql"  # tests/deployment, make airflow: Airflow's metadata DB
  "redis-server redis-server"                       # tests/deployment: the compose stack's Redis
  "chromium chromium"                               # the browser test (tests/integration/test_browser.py)
  "chromedriver chromium-driver"                    # Selenium drives Chromium through it
)

present() {
  local probe
  IFS='|' read -ra alternatives <<<"$1"
  for probe in "${alternatives[@]}"; do
    case "$probe" in
      /*) compgen -G "$probe" >/dev/null && return 0 ;;
      *) command -v "$probe" >/dev/null 2>&1 && return 0 ;;
    esac
  done
  return 1
}

missing=()
for entry in "${required[@]}"; do
  read -r probe package <<<"$entry"
  if [ $# -gt 0 ] && [[ " $* " != *" $package "* ]]; then continue; fi
  present "$probe" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "system packages: missing ${missing[*]}; install them with apt-get (needs root)" >&2
    exit 1
  fi
fi
echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
