"""One frozen spec per analysis: its fields are the defaults, `.params()` the cache key, `.build()` its inputs.

A spec says everything a result depends on besides the checkpoints; the
device, the evaluation strategy and the progress callback change values by
rounding only and are not part of it. `dstab.analysis.results.get(spec,
bundles)` looks a result up (shipped zoo results first, then the user cache)
and computes it only when missing. The CLI's options and the pages' widgets
take their defaults from these fields; `dstab.zooresults` names the instances
the zoo ships. This module imports no PyTorch (the home page reads the specs
before torch is loaded); the methods that need it import it.

Keys come from specs only: `params()` spells every field of the spec (a
new field joins the key by being a field; `spelled`), the probe by
`ProbeSpec.params`, plus a rule's revision where an engine's rule changes
its numbers; what only the loaded model knows (parameter count, the
reorthogonalisation chosen, the BN wording) goes to the result's meta.

Spec protocol (what `results` calls):
    name                     the cache entry name
    check(bundles)           DstabError for bundles the analysis cannot take
    params(bundles)          the cache parameters (no probe is built for them)
    build(bundles, device)   the inputs: probes, or the bundles themselves
    units(bundles), unit(inputs)   how many units of work, and one unit to time (dstab.analysis.cost)
    compute(inputs, progress, per_unit, **runtime) -> (meta, arrays)
    read(result)             the typed result (Surface, Curve, HessianSpectrum, ...)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import ClassVar

from .. import confine, paper
from ..errors import DstabError, require
from ..modelconfig import DDIM_STEPS
from .hessian_settings import HESSIAN_ENGINES, HessianSettings, rule_key
from .probespec import GAN_ROLES, QUARTILE_MIDPOINTS, ProbeSpec, probe_kind  # noqa: F401 (re-exported: the specs' probe)

SURFACE_ENGINES = ("dstab", "loss-landscapes")
SURFACE_PRECISIONS = ("fp32", "tf32", "bf16")  # see fast_surface
DM_SAMPLERS = ("ddpm", "ddim")


def _loss_unit(probe, device=None) -> Callable[[], object]:
    return probe.loss


_CASTS = {"int": int, "float": float, "bool": bool, "str": str}


def spelled(spec, skip: tuple[str, ...] = ("probe",)) -> dict:
    """Every field of `spec` but `skip`, as a cache key spells it: an int field as an int, a float field as a
    float (1 and 1.0 give one key), a tuple as a list, None as null. A field added to a spec (or to
    HessianSettings) joins the key of every spec that has it, with no rule to write."""
    out = {}
    for f in fields(spec):
        if f.name in skip:
            continue
        value = getattr(spec, f.name)
        cast = _CASTS.get(str(f.type).split("|")[0].strip())
        if isinstance(value, tuple | list):
            value = list(value)
        elif value is not None and cast is not None:
            value = cast(value)
        out[f.name] = value
    return out


@dataclass(frozen=True)
class SurfaceSpec:
    """A 2-D loss surface along two filter-normalised random directions (Li et al. 2018)."""

    name: ClassVar[str] = "surface"
    probe: ProbeSpec = field(default_factory=ProbeSpec)
    grid: int = 21  # odd, so the centre is a grid point; cheap on a CPU (Li et al. plot 51 x 51)
    radius: float = 1.0  # the plane spans [-r, r]^2, as Li et al.'s plots
    seed: int = 0  # seed of the two directions
    bias_mode: str = "ignore"  # Li et al.: 1-D parameters (biases, norms) get a zero direction
    engine: str = "dstab"
    precision: str = "fp32"  # fp32, tf32 (CUDA tensor cores) or bf16 autocast (fast_surface)

    def check(self, bundles) -> None:
        from .landscape import grid_coordinates

        require(len(bundles) == 1, f"a surface is of one checkpoint, got {len(bundles)}")
        require(self.engine in SURFACE_ENGINES, f"unknown engine {self.engine!r}; choose one of {SURFACE_ENGINES}")
        require(
            self.precision in SURFACE_PRECISIONS,
            f"unknown precision {self.precision!r}; choose one of {list(SURFACE_PRECISIONS)}",
        )
        require(self.precision == "fp32" or self.engine == "dstab", "--precision applies to the dstab engine only")
        grid_coordinates(self.grid, self.radius)  # bad grids fail before any probe is built
        self.probe.check(bundles[0])

    def own_params(self) -> dict:
        """The key without its probe part (the API keys a custom probe by its own identity)."""
        return spelled(self)

    def params(self, bundles) -> dict:
        return {"probe": self.probe.params(bundles[0]), **self.own_params()}

    def build(self, bundles, device):
        return self.probe.build(bundles[0]).to(device)

    def units(self, bundles) -> int:
        return (self.grid + 1) ** 2 if self.engine != "dstab" else self.grid**2

    unit = staticmethod(_loss_unit)

    def unit_key(self, bundles, device) -> tuple:
        return self.probe.unit_key(bundles[0], device)

    def compute(self, probe, progress=None, per_unit=None, strategy=None, **_) -> tuple[dict, dict]:
        from . import fast_surface

        with fast_surface.precision(self.precision, probe.device):
            return self._compute(probe, progress, per_unit, strategy)

    def _compute(self, probe, progress, per_unit, strategy) -> tuple[dict, dict]:
        from .. import distributed
        from . import landscape, reference, rowsplit

        args = (probe, self.grid, self.radius, self.seed, self.bias_mode)
        if self.engine == reference.ENGINE:
            return reference.surface_ll(*args, progress, per_point=per_unit).to_record()
        ctx = distributed.from_env()
        if ctx.world > 1:
            distributed.init(ctx, probe.device)
            rows = rowsplit.rows_for(self.grid, ctx.rank, ctx.world)
            part = landscape.surface(*args, strategy, rows, progress, per_point=per_unit)
            return rowsplit.gather(part).to_record()
        return landscape.surface(*args, strategy, None, progress, per_point=per_unit).to_record()

    def read(self, result):
        from .landscape import Surface

        return Surface.from_record(result.meta, result.arrays)


@dataclass(frozen=True)
class CurveSpec:
    """The loss along theta(alpha) = alpha theta_a + (1 - alpha) theta_b (Goodfellow et al. 2015); bundles
    (a, b): for the zoo a is a run's final checkpoint and b its early one (the paper: epochs 100 and 10)."""

    name: ClassVar[str] = "interpolate"
    probe: ProbeSpec = field(default_factory=ProbeSpec)
    lo: float = -0.5  # beyond both checkpoints, to see whether each sits in a basin
    hi: float = 1.5
    steps: int = 20  # points per unit of alpha

    def check(self, bundles) -> None:
        from .. import models
        from .interpolation import interpolation_alphas

        require(len(bundles) == 2, f"an interpolation needs two checkpoints (a, b), got {len(bundles)}")
        a, b = bundles
        if a.kind != b.kind:
            raise DstabError(f"cannot interpolate a {a.kind} checkpoint with a {b.kind} checkpoint")
        archs = [
            [models.normalise(x) for x in ([z.header["arch"]] if z.kind == "dm" else z.header["arch"].values())]
            for z in (a, b)
        ]
        require(
            archs[0] == archs[1],
            f"{a.name} and {b.name} have different architectures; interpolate between checkpoints of one architecture",
        )
        interpolation_alphas(self.lo, self.hi, self.steps)
        self.probe.check(a)

    def own_params(self) -> dict:
        return spelled(self)

    def params(self, bundles) -> dict:
        return {"probe": self.probe.params(bundles[0]), **self.own_params()}

    def build(self, bundles, device):
        return tuple(self.probe.build(b).to(device) for b in bundles)

    def units(self, bundles) -> int:
        return round((self.hi - self.lo) * self.steps) + 1

    def unit(self, probes, device=None) -> Callable[[], object]:
        return probes[0].loss

    def unit_key(self, bundles, device) -> tuple:
        return self.probe.unit_key(bundles[0], device)

    def compute(self, probes, progress=None, per_unit=None, **_) -> tuple[dict, dict]:
        from .interpolation import interpolate

        return interpolate(*probes, self.lo, self.hi, self.steps, progress, per_point=per_unit).to_record()

    def read(self, result):
        from .interpolation import Curve

        return Curve.from_record(result.meta, result.arrays)


@dataclass(frozen=True)
class HessianSpec(HessianSettings):
    """Top eigenvalues (Lanczos), trace (Hutchinson) and spectral density (SLQ) of a probe's Hessian (the
    paper's Sec. 3.2). Defaults: what `dstab report` ships (hessian_settings), on a batch of 16 so that a
    CPU does it in minutes."""

    name: ClassVar[str] = "hessian"
    probe: ProbeSpec = field(default_factory=lambda: ProbeSpec(batch_size=16))
    engine: str = "dstab"

    def check(self, bundles) -> None:
        require(len(bundles) == 1, f"a Hessian is of one checkpoint, got {len(bundles)}")
        require(
            self.engine in HESSIAN_ENGINES,
            f"unknown Hessian engine {self.engine!r}; choose one of {list(HESSIAN_ENGINES)}",
        )
        self.probe.check(bundles[0])

    def own_params(self) -> dict:
        """Every setting (HessianSettings' fields and the engine) and the revision of dstab's Lanczos rule."""
        return {**spelled(self), **rule_key(self.engine)}

    def params(self, bundles) -> dict:
        return {"probe": self.probe.params(bundles[0]), **self.own_params()}

    def build(self, bundles, device):
        return self.probe.build(bundles[0]).to(device)

    def units(self, bundles) -> int:
        # loss evaluations: Lanczos (until converged, often ~50 steps) + trace probes + SLQ steps, one
        # Hessian-vector product each, which costs about three losses
        return 3 * (50 + self.trace_samples + self.slq_runs * self.slq_steps)

    unit = staticmethod(_loss_unit)

    def unit_key(self, bundles, device) -> tuple:
        return self.probe.unit_key(bundles[0], device)

    def compute(self, probe, progress=None, per_unit=None, **_) -> tuple[dict, dict]:
        import torch

        from .hessian_engines import analyse

        per_hvp = None if per_unit is None else 3 * per_unit
        with torch.enable_grad():
            meta, arrays = analyse(probe, self.engine, progress, seconds_per_hvp=per_hvp, **self.settings()).to_record()
        # what the built probe says of itself (parameter count, BN wording, loss names): meta, never key
        described = {k: v for k, v in probe.describe().items() if k not in ("name", "checkpoint", "checkpoint_sha256")}
        return {**meta, "probe": described}, arrays

    def read(self, result):
        from .hessian import HessianSpectrum

        return HessianSpectrum.from_record(result.meta, result.arrays)


def _sample_unit(bundle, num: int, device) -> Callable[[], object]:
    """One model (DM) or generator (GAN) call on a batch of `num`: the unit of sampling."""
    import torch

    from ..sampling import sample_shape

    if bundle.kind == "dm":
        model = bundle.model.to(device)
        x = torch.zeros(num, *sample_shape(bundle), device=device)
        t = torch.zeros(num, dtype=torch.long, device=device)
        return lambda: model(x, t)
    g = bundle.generator.to(device)
    z = torch.zeros(num, *g.latent_shape, device=device)
    return lambda: g(z)


@dataclass(frozen=True)
class ConsistencySpec:
    """C(q) of a group of models sampled from one seed (the paper's Eq. 1); the first model is the
    reference. GANs have no sampler: they are keyed with sampler "ddpm" and no steps."""

    name: ClassVar[str] = "consistency"
    num: int = paper.CONSISTENCY_M  # samples per model M, as the paper's Table 1
    seed: int = 0  # the one sampling seed: x_T and per-step noise (DMs), z (GANs)
    sampler: str = "ddpm"  # the paper's ancestral sampler; or "ddim"
    steps: int | None = None  # DDIM steps (None: DDIM_STEPS); DDPM runs all T
    eta: float = 0.0  # DDIM eta: 0 is deterministic
    dataset: str | None = None  # 2-D points' PSNR peak: their data's range; None: each header's dataset

    def for_kind(self, kind: str) -> ConsistencySpec:
        return replace(self, sampler="ddpm", steps=None) if kind == "gan" else self

    def check_options(self) -> None:
        """The sampling options on their own, before any model is loaded."""
        require(self.sampler in DM_SAMPLERS, f"unknown sampler {self.sampler!r}; choose one of {DM_SAMPLERS}")
        require(self.sampler == "ddim" or self.steps is None, "--steps applies to --sampler ddim only")
        require(isinstance(self.num, int) and self.num >= 1, f"samples per model must be >= 1, got {self.num!r}")
        if self.dataset is not None:
            confine.chosen_dataset(self.dataset)

    def check(self, bundles) -> None:
        self.check_options()
        require(len(bundles) >= 2, f"consistency compares at least 2 models, got {len(bundles)}")

    def params(self, bundles) -> dict:
        return spelled(self.for_kind(bundles[0].kind))

    def build(self, bundles, device):
        return list(bundles)

    def units(self, bundles) -> int:
        if bundles[0].kind == "gan":
            return len(bundles)
        return len(bundles) * ((self.steps or DDIM_STEPS) if self.sampler == "ddim" else bundles[0].diffusion.T)

    def unit(self, bundles, device="cpu") -> Callable[[], object]:
        return _sample_unit(bundles[0], self.num, device)

    def unit_key(self, bundles, device) -> tuple:
        return ("sample", bundles[0].sha256 or bundles[0].name, self.num, str(device))

    def compute(self, bundles, progress=None, per_unit=None, names=None, root=None, device="cpu", **_):
        from .consistency import consistency

        s = self.for_kind(bundles[0].kind)
        found = consistency(bundles, names, s.num, s.seed, s.sampler, s.steps, s.eta, device, root, s.dataset)
        return found.to_record()

    def read(self, result):
        from .consistency import ConsistencyResult

        return ConsistencyResult.from_record(result.meta, result.arrays)


TRAJECTORY_FRAMES = ("x_t", "x0_hat", "eps_hat")  # what a stored trajectory holds per step (its key says so)


@dataclass(frozen=True)
class TrajectorySpec:
    """A DM's reverse trajectory from NoiseSource(seed): at every sampler step the model's input x_t, its
    x0 estimate and the noise that estimate implies."""

    name: ClassVar[str] = "trajectory"
    sampler: str = "ddim"  # DDIM_STEPS (50) DDIM steps show the whole path in seconds; "ddpm" runs all T
    steps: int = DDIM_STEPS  # DDIM steps (DDPM: the model's T)
    seed: int = 0
    n: int = 8  # samples

    def check(self, bundles) -> None:
        require(len(bundles) == 1 and bundles[0].kind == "dm", "a sampling trajectory is of one DM checkpoint")
        require(self.sampler in DM_SAMPLERS, f"unknown sampler {self.sampler!r}; choose one of {DM_SAMPLERS}")
        require(self.n >= 1 and self.steps >= 1, "give at least one sample and one step")
        bundles[0].require_finite("every x0 estimate of its trajectory")

    def for_bundle(self, bundle) -> TrajectorySpec:
        """DDPM runs all T steps of the model: the step count follows the checkpoint."""
        return replace(self, steps=bundle.diffusion.T) if self.sampler == "ddpm" else self

    def params(self, bundles) -> dict:
        from ..sampling import sample_shape

        # whether x0 estimates are clipped, as `generate` does it (the model's source's rule)
        clip = bundles[0].diffusion.clip_for(1 + len(sample_shape(bundles[0]))) is not None
        return {**spelled(self), "clip": clip, "frames": list(TRAJECTORY_FRAMES)}

    def build(self, bundles, device):
        return bundles[0]

    def units(self, bundles) -> int:
        return self.steps

    def unit(self, bundle, device="cpu") -> Callable[[], object]:
        return _sample_unit(bundle, self.n, device)

    def unit_key(self, bundles, device) -> tuple:
        return ("sample", bundles[0].sha256 or bundles[0].name, self.n, str(device))

    def compute(self, bundle, progress=None, per_unit=None, device="cpu", **_) -> tuple[dict, dict]:
        from .trajectory import trajectory

        return trajectory(bundle, self.sampler, self.steps, self.seed, self.n, device, progress)

    def read(self, result):
        return result
