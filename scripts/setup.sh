#!/usr/bin/env bash
# Shared set-up for demo.sh and test.sh: installs what is missing, idempotently.
#   - Debian/Ubuntu packages (apt-get, with sudo when not root): $CHRONICORN_APT_PACKAGES
#   - a virtualenv in .venv with chronicorn installed editable (this builds the native icount helper);
#     with the test tools unless $CHRONICORN_PIP_TARGET says otherwise (demo.sh installs only what it runs)
#   - in it, Unicorn rebuilt with chronicorn's patches (scripts/build_unicorn.py; CHRONICORN_STOCK_UNICORN=1: not)
# Source it from the project root: `. scripts/setup.sh`; afterwards $PY is the venv's python.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${CHRONICORN_VENV:-$ROOT/.venv}

need_apt=()
# The basics, checked by what they provide (python3 may not come from Debian):
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v gcc >/dev/null || need_apt+=(gcc)   # compiles the native icount helper
if [ "${CHRONICORN_STOCK_UNICORN:-0}" != 1 ]; then   # build Unicorn with chronicorn's patches (third_party/unicorn)
    for tool in cmake make patch; do command -v $tool >/dev/null || need_apt+=($tool); done
fi
for pkg in ${CHRONICORN_APT_PACKAGES:-}; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null; then
        SUDO=""
        [ "$(id -u)" -ne 0 ] && SUDO=sudo
        echo "setup: installing Debian packages: ${need_apt[*]}" >&2
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
    else
        echo "setup: please install ${need_apt[*]} (no apt-get here)" >&2
    fi
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating virtualenv $VENV" >&2
    python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
stamp="$VENV/.chronicorn-installed"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ] || [ "$ROOT/setup.py" -nt "$stamp" ] \
   || [ -n "$(find "$ROOT/machine/native" -name '*.c' -newer "$stamp")" ] \
   || ! "$PY" -c "import ${CHRONICORN_NEEDS:-machine, pytest}" 2>/dev/null; then
    echo "setup: installing chronicorn and its dependencies into $VENV" >&2
    if ! (cd "$ROOT" && "$PY" -m pip install -e "${CHRONICORN_PIP_TARGET:-.[dev]}") >"$VENV/pip.log" 2>&1; then
        cat "$VENV/pip.log" >&2
        echo "setup: pip install failed (log above, also in $VENV/pip.log)" >&2
        exit 1
    fi
    touch "$stamp"
fi
# Unicorn 2.1.4 rebuilt with chronicorn's patches (third_party/unicorn; ~1 minute, once): firmware runs up to ~2x
# faster. CHRONICORN_STOCK_UNICORN=1 keeps the wheel's library (everything works, slower).
if [ "${CHRONICORN_STOCK_UNICORN:-0}" != 1 ]; then
    if ! "$PY" "$ROOT/scripts/build_unicorn.py" >"$VENV/unicorn-build.log" 2>&1; then
        cat "$VENV/unicorn-build.log" >&2
        echo "setup: building Unicorn failed (log above; CHRONICORN_STOCK_UNICORN=1 keeps the wheel's library)" >&2
        exit 1
    fi
fi
# Bytecode for the editable checkout (pip compiles it for a normal install): every command starts ~40 ms
# sooner, even where PYTHONDONTWRITEBYTECODE keeps Python from writing it (up-to-date files are skipped).
"$PY" -m compileall -q "$ROOT/gdbstub" "$ROOT/machine" "$ROOT/replay" >/dev/null || true
export PY ROOT VENV
