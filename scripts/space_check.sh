#!/usr/bin/env bash
# Start the app the way a Hugging Face Space starts it, and check that it serves.
#
# A Space builds a clean Python environment from requirements.txt alone (none of
# the packages this machine happens to have, no --no-deps data wheels), sets
# SPACE_ID, SYSTEM=spaces and the OAuth variables (hf_oauth: true), and runs
# `python app.py`. This script does the same on the loopback address, twice:
#
#   1. the environment from requirements.txt (CPU basic hardware);
#   2. the same plus the `spaces` package, so the ZeroGPU decorator is imported
#      and applied exactly as on a ZeroGPU Space (a no-op off ZeroGPU).
#
# Each run must serve /config, the login route and one /generate answer per demo
# family within a time limit (scripts/space_probe.py); the resident memory is
# printed. The environments are cached by the hash of requirements.txt and the
# Python version, so a second run only starts the app.
#
#   bash scripts/space_check.sh            # both runs
#   PARETOAPP_SPACE_ENVS=/somewhere bash scripts/space_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
ENVS=${PARETOAPP_SPACE_ENVS:-${XDG_CACHE_HOME:-$HOME/.cache}/paretoapp/space-envs}
key=$( (cat requirements.txt; "$PY" --version) | sha256sum | cut -c1-16)
plain="$ENVS/$key"
zerogpu="$ENVS/$key-spaces"
PIP_FLAGS=(--disable-pip-version-check -q)

# A folder is a finished environment only once .complete exists: an interrupted
# build is thrown away and redone, never half-used.
build_env() {  # build_env DIR [copy-of DIR] -- pip arguments
  local dir=$1 from=${2:-}; shift 2
  [[ -f "$dir/.complete" ]] && return 0
  rm -rf "$dir" "$dir.partial"
  mkdir -p "$ENVS"
  if [[ -n "$from" ]]; then
    # a copy runs fine through bin/python (only the unused bin/ scripts keep the old path)
    cp -a "$from" "$dir.partial" && rm -f "$dir.partial/.complete"
  else
    "$PY" -m venv "$dir.partial"
  fi
  echo "space_check: building $(basename "$dir") ($*)"
  # (this machine's pip configuration warns about every empty local index folder: not news)
  "$dir.partial/bin/python" -m pip install "${PIP_FLAGS[@]}" "$@" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  mv "$dir.partial" "$dir" && touch "$dir/.complete"
}

build_env "$plain" "" -r requirements.txt
build_env "$zerogpu" "$plain" spaces

"$plain/bin/python" scripts/space_probe.py --label "Space from requirements.txt"
"$zerogpu/bin/python" scripts/space_probe.py --label "Space with the spaces package (ZeroGPU path)" --expect-spaces
echo "space_check: passed"
