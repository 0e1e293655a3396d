#!/usr/bin/env bash
# Installs everything the tests need, then runs the checks and the whole test suite:
# lint, types, unit and end-to-end tests (real git, real subprocesses, bubblewrap, the real
# Claude Code CLI against a scripted model API, real Jupyter kernels, JupyterLab in Chromium)
# and the notebooks under nbval.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  command -v bwrap >/dev/null || missing+=(bubblewrap)
  command -v git >/dev/null || missing+=(git)
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev,e2e]'
for installer in .ci/install-*.sh; do
  [ -e "$installer" ] && bash "$installer" "$PWD/.venv"
done

.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python -m pytest tests "$@"
.venv/bin/python -m pytest --nbval-lax --nbval-current-env \
  --nbval-sanitize-with notebooks/nbval_sanitize.cfg notebooks/
