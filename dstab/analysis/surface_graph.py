"""Strategy "graph": a loss surface's point loop captured as one CUDA graph, replayed per point.

On a GPU a grid point of a zoo- or CIFAR-size model is launch-bound: one forward of the 35.7M CIFAR
UNet is ~900 eager ops, each a kernel launch of a few microseconds from the host, against ~1 ms of
bf16 work at batch 64. Capturing the point (the weights written from (a, b) held in a device tensor,
`landscape._Plane.move_to_tensor`, then the probe's loss) as one CUDA graph replays all of it with one
launch. The weights stay views of the plane's flat buffers, whose addresses the graph holds; under
bf16 the matmul weights live in a bf16 buffer written once per point (no per-call casts).

A loss that cannot be captured (host synchronisation, data-dependent shapes) falls back to the
sequential loop, with the reason logged (logger "dstab").
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..errors import require

WARMUP = 3  # eager calls on a side stream before capture (cuDNN autotuning, allocator pools)


def graphed_losses(probe, at, coords: np.ndarray, progress, eager) -> torch.Tensor:
    """L(theta + a d1 + b d2) for each row (a, b) of `coords` by replaying one captured graph of `at`
    (a `landscape.PointLoss`); `eager()` computes them the sequential way when capture fails."""
    require(torch.device(probe.device).type == "cuda", "strategy 'graph' needs a CUDA device; use 'sequential'")
    ab = torch.zeros(2, device=probe.device)

    def point() -> torch.Tensor:
        at.plane.move_to_tensor(ab)
        return probe.loss_of(at.module).reshape(())

    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP):
                point()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = point()
    except RuntimeError as exc:
        log = logging.getLogger("dstab")
        log.warning("%s: CUDA graph capture failed (%s); running the points eagerly", probe.name, exc)
        return eager()
    values = torch.empty(len(coords), device=probe.device)
    host = torch.as_tensor(np.asarray(coords, dtype=np.float32)).pin_memory()
    for i in range(len(coords)):
        ab.copy_(host[i], non_blocking=True)
        graph.replay()
        values[i] = out
        progress(i + 1)
    return values
