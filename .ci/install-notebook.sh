#!/bin/sh
# Installs what the notebook and browser tests need, on a fresh Debian machine, as root.
# Idempotent: safe to run again. Usage: .ci/install-notebook.sh VENV_DIR
set -eu

venv="${1:?usage: $0 VENV_DIR}"
if [ ! -x "$venv/bin/python" ]; then
    echo "$0: no Python venv at $venv" >&2
    exit 2
fi

# Debian's chromium: Playwright drives it directly (its own browser downloads are not used).
if ! command -v chromium >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends chromium
fi

"$venv/bin/python" -m pip install --quiet \
    "jupyterlab>=4.2" "playwright>=1.45" \
    "ipywidgets>=8.1" "ipykernel>=6.29" "jupyter_client>=8" "nbval>=0.11" \
    "matplotlib>=3.8"
