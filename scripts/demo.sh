#!/usr/bin/env bash
# Install the server into ./.venv and start the demo: SQLite, the built-in
# Asterisk stand-in, a sample community. Usage: bash scripts/demo.sh [demo args...]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
ensure_venv
"$PY" -m pip install -q -e .
exec "$VENV/bin/callcenter" demo "$@"
