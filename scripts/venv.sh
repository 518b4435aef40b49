# Sourced by scripts/demo.sh and scripts/test.sh: a virtual environment for the
# project, so nothing is installed into the system Python (Debian 12 and Ubuntu
# 24.04 refuse that: PEP 668, "externally-managed-environment").
#
# Uses $CALLCENTER_VENV, else an already active virtualenv, else ./.venv; creates
# it with the first Python 3.11+ found (python3.13 ... python3), installing
# Debian's python3-venv first where the system Python lacks it.

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

pick_python() {
  local py
  for py in python3.13 python3.12 python3.11 python3; do
    if command -v "$py" >/dev/null &&
       "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$py"; return 0
    fi
  done
  echo "Python 3.11 or newer is needed (Debian/Ubuntu: apt-get install python3)" >&2
  return 1
}

ensure_venv() {
  VENV="${CALLCENTER_VENV:-${VIRTUAL_ENV:-$PWD/.venv}}"
  if [ ! -x "$VENV/bin/python" ]; then
    local py; py="$(pick_python)"
    if ! "$py" -m venv "$VENV" 2>/dev/null; then
      rm -rf "$VENV"
      local ver; ver="$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
      echo "installing python${ver}-venv (the system Python has no venv module)"
      as_root apt-get update -qq
      DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "python${ver}-venv" >/dev/null ||
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3-venv >/dev/null
      "$py" -m venv "$VENV"
    fi
  fi
  PY="$VENV/bin/python"
  export PATH="$VENV/bin:$PATH"
  "$PY" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
}
