"""The probe's spec: which deterministic loss of a checkpoint the surface, curve and Hessian specs measure.

`ProbeSpec` is a field of `SurfaceSpec`, `CurveSpec` and `HessianSpec` (specs.py re-exports it); its
`params()` is their cache key's probe part (the same for every analysis of a probe), `check()` the
rules a probe's settings obey for a checkpoint (timesteps within its T included), and `build()` the
one place that decides which probe (dstab.probes) a checkpoint gets. Imports no PyTorch; `build` does.
The checkpoint may be a loaded Bundle or anything with its `kind`, `name`, `header` and a DM's
`diffusion.T` (`zooresults.EntryCheckpoint`: a zoo entry read from the manifest alone).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import confine
from ..errors import require
from ..modelconfig import check_timesteps

# dstab's choice, not the paper's (it does not say which t its DM Hessian used): the midpoints of the four
# quartiles of [0, T), a 4-point quadrature of the uniformly weighted training loss
QUARTILE_MIDPOINTS = (0.125, 0.375, 0.625, 0.875)
GAN_ROLES = ("g", "d")  # generator loss with D frozen, discriminator loss with G frozen


def probe_kind(params: dict) -> str:
    """'dm', 'gan-g' or 'gan-d': the probe a key's probe part (`ProbeSpec.params`) names."""
    return "dm" if params["kind"] == "dm" else f"gan-{params.get('role') or 'g'}"


def _ints(values) -> tuple[int, ...] | None:
    if values is None:
        return None
    return tuple(int(v) for v in ([values] if isinstance(values, int | float | str) else values))


@dataclass(frozen=True)
class ProbeSpec:
    """Which deterministic loss of a checkpoint is measured (dstab.probes): a DM's L_simple averaged over
    timesteps, or a GAN's G or D loss, on a fixed batch drawn by `seed` from `dataset`."""

    timesteps: tuple[int, ...] | None = None  # DM timesteps; None: `fractions` of the model's T
    role: str | None = None  # GAN: "g" or "d"; None: "g"
    batch_size: int = 64
    seed: int = 0
    fractions: tuple[float, ...] = QUARTILE_MIDPOINTS
    dataset: str | None = None  # None: the checkpoint header's (confine.header_dataset); else the user's pick

    @classmethod
    def of(cls, kind: str, timesteps=None, role: str | None = None, **kw) -> ProbeSpec:
        """The probe of a checkpoint kind from controls that offer both a timestep and a role."""
        return cls(timesteps=_ints(timesteps), **kw) if kind == "dm" else cls(role=role, **kw)

    def check(self, bundle) -> None:
        if bundle.kind == "gan":
            require(self.timesteps is None, f"{bundle.name} is a GAN; timesteps apply to DMs only (use --role g|d)")
            require(self.role in (None, *GAN_ROLES), f"GAN probe role must be 'g' or 'd', got {self.role!r}")
        else:
            require(self.role is None, f"{bundle.name} is a DM; --role applies to GANs only (use --timestep)")
            if self.timesteps is not None:
                check_timesteps(list(self.timesteps), bundle.diffusion.T)
        require(self.batch_size >= 1, f"batch size must be positive, got {self.batch_size}")
        if self.dataset is not None:
            confine.chosen_dataset(self.dataset)

    def timesteps_of(self, bundle) -> list[int]:
        if self.timesteps is not None:
            return list(self.timesteps)
        return [int(f * bundle.diffusion.T) for f in self.fractions]

    def params(self, bundle) -> dict:
        """The probe's part of every cache key it is in (surface, curve, Hessian): the spec's own values,
        with the timesteps and dataset resolved against the checkpoint (the header's dataset when none
        was picked). Nothing the built probe would add (parameter count, BN wording): that is meta."""
        self.check(bundle)
        dataset = self.dataset if self.dataset is not None else bundle.header.get("dataset")
        common = {"batch_size": int(self.batch_size), "seed": int(self.seed), "dataset": dataset}
        if bundle.kind == "gan":
            return {"kind": "gan", "role": self.role or "g", **common}
        return {"kind": "dm", "timesteps": self.timesteps_of(bundle), **common}

    def build(self, bundle):
        """The Probe: the one place that decides which probe a checkpoint gets."""
        from ..probes import dm_probe, gan_probe

        self.check(bundle)
        if bundle.kind == "dm":
            return dm_probe(bundle, self.timesteps_of(bundle), self.batch_size, self.seed, self.dataset)
        return gan_probe(bundle, self.role or "g", self.batch_size, self.seed, self.dataset)

    def unit_key(self, bundle, device) -> tuple:
        """What one loss evaluation of this probe is timed under (dstab.analysis.cost)."""
        return ("loss", bundle.sha256 or bundle.name, repr(self.params(bundle)), str(device))
