#!/usr/bin/env bash
# Every GPU check of the project in one run (< 10 minutes on one H100/H200), for a lent CUDA machine
# with its own PyTorch; needs no streamlit, pytorch-fid or loss-landscapes:
#   bash bench/gpu.sh 2>&1 | tee gpu.log
# Prints: the card and torch; the dashboard's device label from NVML against torch's (skipped when
# the dashboard's dependencies are absent); surfaces of zoo-size models (dstab sequential and vmap);
# then bench/gpu_bench.py's table: the 51x51 surface of the 35.7M DDPM CIFAR UNet at batch 64 in
# fp32, tf32 and bf16 with FLOP/s and share of peak (goal <= 10 s in bf16/tf32 on an H100), its top-3
# Hessian, and 1,000 training steps of mdlrc-clts vs the baseline on it (step-time ratio).
# Paste the table, the card and the date into bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0), torch.__version__)"
echo "== the dashboard's device label before torch is imported (NVML) against torch's own"
python -c "
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
echo "== surfaces, zoo-size models: dstab sequential vs vmap (fp32)"
timeout 120 python bench/bench_surface.py --device cuda --models toy-dm,digits-gan-g,digits-dm --grid 21 --repeats 2 --engines dstab,vmap || echo "(zoo surfaces failed or timed out; continuing)"
echo "== the 35.7M UNet: surfaces per precision, top-3 Hessian, 1,000 training steps (one table)"
timeout 420 python bench/gpu_bench.py --device cuda
timeout 240 python bench/gpu_train.py --device cuda || echo "(bench/gpu_train.py: CIFAR-size training check failed or timed out)"
