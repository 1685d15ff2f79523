#!/usr/bin/env bash
# The whole test suite: tools, environment, then pytest: the unit tests with no network, then integration and e2e.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_test_tools.sh
scripts/bootstrap.sh
if [ "$#" -gt 0 ]; then
    exec .venv/bin/python -m pytest -q "$@"
fi
# Unit tests first, behind a dead proxy: they must need no network but loopback (network tests are marked
# integration), then the integration and end-to-end tests.
dead=http://127.0.0.1:9
HTTP_PROXY=$dead HTTPS_PROXY=$dead http_proxy=$dead https_proxy=$dead \
    NO_PROXY=127.0.0.1,localhost,::1 no_proxy=127.0.0.1,localhost,::1 \
    .venv/bin/python -m pytest -q -m "not integration"
exec .venv/bin/python -m pytest -q -m integration
