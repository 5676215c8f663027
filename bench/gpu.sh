#!/usr/bin/env bash
# Every GPU check of the project in one run, for a lent CUDA machine with its own PyTorch (python3; no
# streamlit, pytorch-fid, loss-landscapes or internet needed). Its own sections finish within 6 minutes
# on one H100 (each has a hard limit; their limits sum to 350 s):
#   bash bench/gpu.sh 2>&1 | tee gpu.log
#   bash bench/gpu.sh --smoke      # the same sections at tiny sizes on a CPU (tests/test_gpu_bench.py runs it)
# Prints: the card and torch; the dashboard's device label from NVML against torch's (skipped when the
# dashboard's dependencies are absent); zoo-size surfaces (sequential, graph, vmap); bench/gpu_bench.py's
# table for the 35.7M DDPM CIFAR UNet at batch 64: eager ops per point, 11x11 surfaces per precision and
# strategy, then 51x51 per precision with the fastest strategy while the budget lasts, achieved TFLOP/s
# and share of peak; its top-3 Hessian; training steps of mdlrc-clts against the baseline (step-time ratio).
# Further sections: every bench/gpu.d/*.sh, called with the same arguments (--smoke or none) and a limit
# of its own, after these: bench/gpu.d/cifar_train.sh, the CIFAR training check of issue 24 (limit 240 s;
# the whole script about 10 minutes on an H100).
# Paste the table, the card and the date into bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
SMOKE=""
DEVICE=cuda
if [ "${1:-}" = "--smoke" ]; then
    SMOKE="--smoke"
    DEVICE=cpu
fi
start=$SECONDS

section() {  # section NAME LIMIT_S COMMAND...: run it under a hard limit; a failure is reported, not fatal
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit} s, $((SECONDS - start)) s so far)"
    timeout "$limit" "$@" || echo "($name failed or passed its ${limit} s limit; continuing)"
}

if [ -z "$SMOKE" ]; then
    python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0), torch.__version__)"
    section "the dashboard's device label before torch is imported (NVML) against torch's own" 20 python3 -c "
import sys
sys.path.insert(0, '.')
try:
    from dashboard import server
except ImportError as e:
    print('skipped:', e); raise SystemExit(0)
before = server.device_label()
assert 'torch' not in sys.modules and 'streamlit' not in sys.modules
import torch
print('NVML:', before, '| torch:', 'cuda (' + torch.cuda.get_device_name(0) + ')', '| equal:', before == 'cuda (' + torch.cuda.get_device_name(0) + ')')
"
    section "surfaces, zoo-size models: sequential, graph (CUDA graph), vmap (fp32)" 40 \
        python3 bench/bench_surface.py --device cuda --models toy-dm,digits-gan-g --grid 21 --repeats 1 \
        --engines dstab,graph,vmap
    section "the 35.7M UNet: ops per point, surfaces per precision and strategy, top-3 Hessian, training" 290 \
        python3 bench/gpu_bench.py --device cuda --budget 250
else
    section "surfaces, a zoo-size model (smoke: CPU, sequential and vmap)" 120 \
        python3 bench/bench_surface.py --device cpu --models toy-dm --grid 3 --repeats 1 --engines dstab,vmap
    section "the UNet table (smoke: a tiny UNet on the CPU)" 300 python3 bench/gpu_bench.py --smoke --budget 250
fi
for extra in bench/gpu.d/*.sh; do
    [ -e "$extra" ] || continue
    section "$(basename "$extra" .sh)" 600 bash "$extra" $SMOKE
done
echo "== done in $((SECONDS - start)) s on $DEVICE"
