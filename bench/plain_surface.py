"""A plain script doing what `dstab surface <GAN> --role g --grid N` computes, and nothing else: the
baseline of bench/bench_process.py. Loads the checkpoint's tensors with safetensors, builds G and D from
the header's architecture, draws the same z, the same two filter-normalised directions, and evaluates
the generator loss at the N x N points in a loop; prints the centre loss. No CLI, cache, memory guard,
cost estimate or result files.

    python bench/plain_surface.py CHECKPOINT.safetensors GRID
"""

from __future__ import annotations

import json
import sys

import _repo  # noqa: F401 (puts the repository root on sys.path)
import numpy as np
import torch
from safetensors import safe_open

from dstab import models
from dstab.analysis.directions import plane_directions
from dstab.diffusion import NoiseSource
from dstab.gan import generator_loss


def main(path: str, grid: int, batch: int = 64) -> None:
    torch.set_num_threads(1)
    with safe_open(path, "pt") as f:
        header = json.loads(f.metadata()["dstab"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    nets = {}
    for role in ("generator", "discriminator"):
        net = models.build(header["arch"][role]).eval()
        net.load_state_dict({k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(role + ".")})
        nets[role] = net
    G, D = nets["generator"], nets["discriminator"]
    z = NoiseSource(0, (batch,)).latent(tuple(G.latent_shape))
    loss_of = generator_loss(header.get("gan", {}).get("loss", "non-saturating"))
    params = {k: p.detach().clone() for k, p in G.named_parameters()}
    d1, d2, _ = plane_directions(params, 0, "ignore")
    coords = np.linspace(-1.0, 1.0, grid)
    losses = []
    with torch.no_grad():
        for a in coords:
            for b in coords:
                for k, p in G.named_parameters():
                    p.copy_(params[k] + a * d1[k] + b * d2[k])
                losses.append(float(loss_of(D(G(z))).mean()))
    print(f"centre loss {losses[len(losses) // 2]:.6f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
