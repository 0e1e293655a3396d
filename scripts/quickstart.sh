#!/usr/bin/env bash
# Installs parallelcc_sdk into ./.venv and runs the quickstart: eight tasks in parallel against a
# sample repository on the local backend. Needs Python >= 3.11 and git; no account, no network
# beyond the package index.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/python examples/quickstart.py "$@"
