#!/usr/bin/env bash
# The CIFAR-size training check of issue 24 (bench/gpu_train.py): 200 steps each of the baseline and
# mdlrc-clts on the paper's CIFAR-10 UNet (52.5M parameters) at batch 128 in bf16 on generated 32x32 RGB
# data, images/s, step-time ratio, achieved TFLOP/s; then one FID-1k pass timed with a RANDOMLY
# INITIALISED Inception (timing only). About 4 minutes on an H100; its own limit is 240 s.
# `--smoke`: the same code at tiny sizes on a CPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${1:-}" = "--smoke" ]; then
    exec timeout 300 python3 bench/gpu_train.py --smoke
fi
exec timeout 240 python3 bench/gpu_train.py --device cuda
