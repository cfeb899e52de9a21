#!/usr/bin/env bash
# GPU smoke check, prepared for a machine with an NVIDIA GPU (one run, under 8 minutes):
# build the tiny model, run the backend conformance suite for the local backends on CUDA,
# then print a small throughput table. Wheels the machine lacks may be carried in .whl/.
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
timeout 360 python3 -m pytest tests/conformance tests/engine/test_transformers_backend.py \
    -k "transformers or vllm-engine" --device cuda -p no:cacheprovider -o addopts="" -q
timeout 120 python3 scripts/gpu_throughput.py
