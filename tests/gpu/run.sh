#!/usr/bin/env bash
# The checks a GPU machine runs (under five minutes on one GPU): the CUDA path of the engine and
# of grouped training, then the grouped bench on the device for group sizes up to 64.
#   bash tests/gpu/run.sh            (from the repository root, after bash .ci/setup)
set -euo pipefail
cd "$(dirname "$0")/../.."
py=${PYTHON:-.venv/bin/python}
"$py" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
# every algorithm and method on CUDA (device auto picks it), groups included, and CUDA parity tests
timeout 200 "$py" -m pytest -q -p no:cacheprovider -x tests/train/test_groups.py tests/sparse \
    --timeout 180
timeout 120 "$py" -m dsrl_platform.cli bench --device cuda --algos td3,sac,dqn --methods dense,ds \
    --groups 1,8,64 --steps 100 --json
