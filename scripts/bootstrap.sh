#!/usr/bin/env bash
# Prepare .venv for ocibuild on a machine that has only python3 and pip: get uv, then `uv sync` from uv.lock.
set -euo pipefail
cd "$(dirname "$0")/.."

find_uv() {
    if command -v uv >/dev/null 2>&1; then command -v uv; return; fi
    local user_bin
    user_bin="$(python3 -m site --user-base)/bin/uv"
    if [ -x "$user_bin" ]; then echo "$user_bin"; return; fi
    return 1
}

if ! UV="$(find_uv)"; then
    echo "bootstrap: installing uv for this user (pip install --user uv)" >&2
    python3 -m pip install --quiet --user uv 2>/dev/null \
        || python3 -m pip install --quiet --user --break-system-packages uv
    UV="$(find_uv)"
fi

"$UV" sync --quiet --frozen --python python3 >&2
