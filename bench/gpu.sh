#!/usr/bin/env bash
# Every GPU check of the project in one run, for a lent CUDA machine (no streamlit needed there):
#   bash bench/gpu.sh 2>&1 | tee gpu.log
# Prints, in order: the dashboard's device label read from NVML before torch loads against torch's, the surface engines on zoo-size models and the 51x51 surface of the 35.7M-parameter
# CIFAR-size UNet at batch 64 (goal <= 30 s, >= 5x loss-landscapes on zoo-size models), and trainer
# steps/s of the digits and CIFAR-size UNets with the CLTS+MDLRC overhead ratio. Record the tables,
# the card and the date in bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0), torch.__version__)"
echo "== the dashboard's device label before torch is imported (NVML) against torch's own"
python -c "
import sys
from dashboard import server
before = server.device_label()
assert 'torch' not in sys.modules and 'streamlit' not in sys.modules
import torch
print('NVML:', before, '| torch:', 'cuda (' + torch.cuda.get_device_name(0) + ')', '| equal:', before == 'cuda (' + torch.cuda.get_device_name(0) + ')')
"
echo "== surfaces, zoo-size models: dstab (sequential, vmap) vs loss-landscapes"
python bench/bench_surface.py --device cuda --models toy-dm,digits-gan-g,digits-dm --grid 21 --repeats 3
echo "== 51x51 surface of the CIFAR-size UNet at batch 64"
python bench/bench_surface.py --device cuda --models cifar-unet --grid 51 --engines dstab,vmap --repeats 1
echo "== trainer steps/s and CLTS+MDLRC overhead (digits and CIFAR-size UNets)"
python bench/bench_trainer.py --device cuda --cifar --blocks 4 --steps 10
