#!/usr/bin/env bash
# The toy SPCT reproduction at GPU scale: a 5M-weight judge from random weights, 30,000 training items and
# 2,000 held-out items, every stage on one GPU (sized for under 10 minutes on one H100), then the report's
# table and claims. Wheels the machine lacks may be carried in .whl/ (installed first, as gpu_smoke.sh does).
#
#   scripts/gpu_toy.sh [--scale gpu|tiny] [--out DIR]
#
# --scale tiny runs a step or two of every stage from the shipped GRM on the CPU in seconds: CI runs it so
# that the script and the pipeline cannot drift apart (tests/training/test_gpu_toy_script.py).
set -euo pipefail
cd "$(dirname "$0")/.."

scale=gpu
out=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --scale) scale="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        *) echo "usage: scripts/gpu_toy.sh [--scale gpu|tiny] [--out DIR]" >&2; exit 2 ;;
    esac
done
case "$scale" in
    gpu | tiny) ;;
    *) echo "--scale must be gpu or tiny, not '$scale'" >&2; exit 2 ;;
esac
out="${out:-toy-run-$scale}"

python="${PYTHON:-python3}"
if compgen -G ".whl/*.whl" >/dev/null; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
if [[ "$scale" == gpu ]]; then
    "$python" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
fi

started=$SECONDS
"$python" -m grmjudge.training.toy run --out "$out" --scale "$scale" 2>"$out.log" || {
    tail -n 40 "$out.log" >&2
    exit 1
}
"$python" -m grmjudge.training.toy report "$out"
echo "toy run at scale $scale: $((SECONDS - started)) s; stage times in $out/report.md, trainer logs in $out.log"
