"""Settings of `dstab report` and of the results shipped with the zoo, importable without PyTorch.

The dashboard asks the cache for exactly these keys, so its pages open on the
shipped results; its home page does so before anything imports torch.
"""

# Hessians are costly on a CPU (one Hv of the digits UNet at batch 64 x 4 timesteps takes seconds):
# a batch of 16 per timestep, 3 top eigenvalues to residual 1e-3 (at most 80 Lanczos steps),
# 20 Hutchinson probes, 2 SLQ runs of 40 steps: about 200 Hessian-vector products per probe.
CONSISTENCY_SETTINGS = {"num": 32, "seed": 0}
# what a consistency result is keyed by when a caller leaves a setting out (consistency.cached)
CONSISTENCY_PARAMS = {"num": 32, "seed": 0, "sampler": "ddpm", "steps": None, "eta": 0.0}
SAMPLERS = (("ddpm", None), ("ddim", 50))
HESSIAN_PROBE = {"batch_size": 16, "seed": 0, "timestep_fractions": (0.125, 0.375, 0.625, 0.875)}
# block / lambda_min: the Lanczos with its convergence check (results before it have no "block" key
# and are not served as current); lambda_min from its own run, so the report states a converged value
HESSIAN_SETTINGS = {"top_k": 3, "trace_samples": 20, "slq_runs": 2, "slq_steps": 40, "seed": 0, "block": 2,
                    "lambda_min": True}  # fmt: skip


def hessian_timesteps(T: int) -> list[int]:
    """The report's DM Hessian probe timesteps: the quartile midpoints of [0, T)."""
    return [int(f * T) for f in HESSIAN_PROBE["timestep_fractions"]]
