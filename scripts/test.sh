#!/usr/bin/env bash
# Install what the test suite needs, then run it: ruff, mypy, pytest.
# Usage: bash scripts/test.sh [pytest args...]
# Python packages go into ./.venv (scripts/venv.sh), never the system Python.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh

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

ensure_venv
"$PY" -m pip install -q -e ".[test]"

# PostgreSQL: the suite runs every database test on SQLite and on PostgreSQL.
PG_URL="${CALLCENTER_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/test}"
if ! "$PY" - "$PG_URL" <<'PY' 2>/dev/null
import asyncio, sys, asyncpg
async def main():
    conn = await asyncpg.connect(sys.argv[1], timeout=3)
    await conn.close()
asyncio.run(main())
PY
then
  fresh=no
  if [ -z "${CALLCENTER_TEST_PG_URL:-}" ] && ! command -v pg_ctlcluster >/dev/null; then
    # A fresh machine: Debian's PostgreSQL, trusting local connections (a test box only).
    echo "installing PostgreSQL"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >/dev/null
    fresh=yes
  fi
  if [ -d /etc/postgresql ] && command -v pg_ctlcluster >/dev/null; then
    version="$(ls /etc/postgresql | sort -V | tail -n1)"
    if [ "$fresh" = yes ]; then
      hba="/etc/postgresql/$version/main/pg_hba.conf"
      as_root sed -i -E 's/^(local|host)(\s+all\s+all\s+.*\s)(peer|scram-sha-256|md5)$/\1\2trust/' "$hba"
      as_root sed -i -E 's/^(local\s+all\s+postgres\s+)peer$/\1trust/' "$hba"
    fi
    echo "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main restart || true
    sleep 2
    if [ "$fresh" = yes ]; then
      as_root su postgres -c "psql -qc 'CREATE DATABASE test'" || true
    fi
  else
    echo "PostgreSQL is not reachable at $PG_URL: start one or set CALLCENTER_TEST_PG_URL" >&2
    exit 1
  fi
fi

"$PY" -m ruff check .
"$PY" -m mypy
"$PY" -m pytest "$@"
