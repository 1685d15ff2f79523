#!/usr/bin/env bash
# The one GPU check, run on the lent GPU machine (see README "GPU"). Prepare here first:
#   .venv/bin/python scripts/gpu_prepare.py examples/gpu-torch     # -> build/gpu-check/layout
# then run this with carry ["build/gpu-check", "build/run-gpu-carry", ".whl"] on the device.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
[ -d build/run-gpu-carry ] && export PATH="$PWD/build/run-gpu-carry:$PATH"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
rc=0
echo "== runner: safetensors loader (file and shards) against raw pinned H2D, same run, page cache warm"
# 2 x GPU_CHECK_GB GB on this machine's disk under build/ (removed afterwards); no network.
timeout 240 python3 scripts/bench_weights_load.py --gb "${GPU_CHECK_GB:-4}" --dir "$PWD/build/bench-weights-load" || rc=1
echo "== runner: serving a torch predictor whose setup() loads weights to the GPU"
PYTHONPATH="$PWD/layers/runner:${PYTHONPATH:-}" timeout 180 python3 scripts/gpu_runner_check.py --gb 1 || rc=1
echo "== GPU example through ocibuild's runtime"
python3 scripts/gpu_predict_check.py runc unshare || rc=1
exit $rc
