#!/usr/bin/env bash
# Install what the test suite needs, then run it: ruff, mypy, pytest.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

# System packages: Chromium and a CJK font (browser tests), espeak-ng and sox (prompts, audio).
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v sox >/dev/null || need+=(sox)
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing system packages: ${need[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need[@]}" >/dev/null
fi

python3 -m pip install -q -e ".[test]"

# PostgreSQL: the suite runs every database test on SQLite and on PostgreSQL.
PG_URL="${CALLCENTER_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/test}"
if ! python3 - "$PG_URL" <<'PY' 2>/dev/null
import asyncio, sys, asyncpg
async def main():
    conn = await asyncpg.connect(sys.argv[1], timeout=3)
    await conn.close()
asyncio.run(main())
PY
then
  if [ -d /etc/postgresql ] && command -v pg_ctlcluster >/dev/null; then
    echo "starting PostgreSQL"
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    sleep 2
  else
    echo "PostgreSQL is not reachable at $PG_URL: start one or set CALLCENTER_TEST_PG_URL" >&2
    exit 1
  fi
fi

ruff check .
mypy
python3 -m pytest "$@"
