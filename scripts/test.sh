#!/usr/bin/env bash
# The whole test suite: tools, environment, then pytest (unit, integration and end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_test_tools.sh
scripts/bootstrap.sh
exec .venv/bin/python -m pytest -q "$@"
