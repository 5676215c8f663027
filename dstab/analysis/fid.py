"""FID and its offline stand-ins: Frechet distances between Gaussian fits of features.

- "fid": pytorch-fid's InceptionV3 (pool3, 2048-d) with its FID weights,
  whenever they are available: given by path, in torch.hub's cache, or
  downloaded on request. dstab never ships or fakes them.
- "fd_local": features of dstab's own digit classifier (features.py),
  labelled "FD (local features)", never "FID".
- "fd_points": the raw 2-D points of a toy dataset, labelled so.

The distance is pytorch-fid's (||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2)),
its trace term from symmetric eigendecompositions (`featmetrics.frechet`,
equal to pytorch-fid's `sqrtm` route to rounding). On the same image features
the training evaluator also reports KID with its standard error and
precision / recall / density / coverage (`featmetrics`). The sample count and
sampler steps are part of every metric's name (`metric_name`), e.g.
fd_local@500x50ddim. Reference statistics and features of a dataset are
computed once per feature network and cached on disk. `floor` measures a
metric's own floor: real images against the reference at the evaluation's
sample count.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from .. import data
from ..checkpoints import atomic_write_bytes, file_sha256, safe_torch_load
from ..diffusion import NoiseSource
from ..errors import DstabError, require
from ..fileio import user_cache_dir
from ..metricnames import (  # noqa: F401 (part of this module's API)
    HIGHER_IS_BETTER,
    LABELS,
    check_fid_samples,
    metric_label,
    metric_name,
    repeat_name,
)
from . import distmetrics, featmetrics, features

POINT_METRICS = ("mmd2", "sw2", "mode_coverage", "mode_precision")  # 2-D data; modes only for mixtures
REFERENCE_POINTS = 1000  # the data sample that 2-D evaluations are measured against
FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid's FID_WEIGHTS_URL file


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    return featmetrics.frechet(mu1, sigma1, mu2, sigma2)


def gaussian_stats(feats) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(feats, dtype=np.float64)
    require(f.ndim == 2 and f.shape[0] >= 2, f"need at least 2 feature vectors, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def fd(feats_a, feats_b) -> float:
    return frechet_distance(*gaussian_stats(feats_a), *gaussian_stats(feats_b))


# --- InceptionV3 (pytorch-fid) ------------------------------------------------------------------
def inception_weights(path: str | os.PathLike | None = None, download: bool = False) -> Path | None:
    """The FID weights file: `path`, $DSTAB_FID_WEIGHTS, torch.hub's cache, or (download=True) fetched
    into that cache. None when none is available (offline)."""
    explicit = path or os.environ.get("DSTAB_FID_WEIGHTS")
    if explicit:
        p = Path(explicit)
        require(p.is_file(), f"FID weights file {p} does not exist")
        return p
    cached = Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_NAME
    if cached.is_file():
        return cached
    if not download:
        return None
    from pytorch_fid.inception import FID_WEIGHTS_URL

    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(FID_WEIGHTS_URL, str(cached), progress=False)
    except OSError:  # URLError and socket errors are OSErrors: offline
        return None
    return cached


def require_weights(path: str | os.PathLike | None = None) -> Path:
    """`inception_weights(path, download=True)`, or DstabError saying where to put them."""
    weights = inception_weights(path, download=True)
    require(
        weights is not None,
        "FID needs pytorch-fid's InceptionV3 weights and none are cached or downloadable (offline?): put "
        f"{FID_WEIGHTS_NAME} on this machine and set DSTAB_FID_WEIGHTS=/path/to/it",
    )
    return weights


def load_inception(weights: Path, device="cpu") -> torch.nn.Module:
    """pytorch-fid's InceptionV3 (pool3) with the FID weights read from `weights` (weights_only)."""
    state = safe_torch_load(Path(weights))
    require(
        isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values()),
        f"{weights}: not a state dict of tensors; expected pytorch-fid's {FID_WEIGHTS_NAME}",
    )
    return _inception_from_state(state, str(weights), device)


def _inception_from_state(state: dict, what: str, device) -> torch.nn.Module:
    from pytorch_fid import inception as pf

    # pytorch-fid fetches its weights by URL; hand it the given state instead
    with mock.patch.object(pf, "load_state_dict_from_url", lambda *a, **k: state):
        try:
            net = pf.InceptionV3([pf.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
        except RuntimeError as exc:
            raise DstabError(
                f"{what}: these are not pytorch-fid's FID Inception weights ({str(exc).splitlines()[0][:200]})"
            ) from None
    return net.eval().to(device)


def random_inception_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """The FID InceptionV3's tensors with torchvision's random initialisation (seeded): for timings
    (the cost does not depend on the weights) and tests of the plumbing, never for FID values. dstab
    never fakes the real weights; a file of these must be labelled as what it is."""
    import torchvision
    from pytorch_fid import inception as pf

    with (
        torch.random.fork_rng(),
        mock.patch.object(pf, "load_state_dict_from_url", lambda *a, **k: None),
        mock.patch.object(torchvision.models.Inception3, "load_state_dict", lambda self, *a, **k: None),
    ):
        torch.manual_seed(seed)
        return pf.fid_inception_v3().state_dict()


def random_inception(device="cpu") -> torch.nn.Module:
    """pytorch-fid's InceptionV3 with random weights: times an evaluation where no weights are at hand."""
    return _inception_from_state(random_inception_state(), "random Inception", device)


# --- feature extractors ---------------------------------------------------------------------------
class Extractor:
    """images/points in dstab's range -> feature rows; `key` identifies it for the stats cache."""

    def __init__(self, metric: str, fn, key: str):
        self.metric, self.fn, self.key = metric, fn, key

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, batch: int = 500) -> np.ndarray:
        return np.concatenate([self.fn(x[i : i + batch]).double().cpu().numpy() for i in range(0, len(x), batch)])


def extractor(metric: str, dataset: data.Dataset, device="cpu", fid_weights=None) -> Extractor:
    if metric == "fd_points":
        require(not dataset.image, f"fd_points needs a point dataset, {dataset.spec!r} holds images")
        return Extractor(metric, lambda x: x.reshape(len(x), -1), "points")
    if metric == "fd_local":
        path = features.features_path(dataset.spec.partition(":")[0])
        net, _ = features.load_classifier(path)
        net = net.to(device)
        return Extractor(metric, lambda x: net.features(x.to(device)), file_sha256(path))
    if metric == "fid":
        require(dataset.image, f"FID needs an image dataset, {dataset.spec!r} holds points")
        weights = require_weights(fid_weights)
        net = load_inception(weights, device)

        def fn(x):
            x = (x.to(device) + 1.0) / 2.0  # pytorch-fid wants [0, 1]
            return net(x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x)[0].flatten(1)

        return Extractor(metric, fn, file_sha256(weights))
    raise DstabError(f"unknown metric {metric!r}; choose one of {sorted(LABELS)}")


def auto_metric(dataset: data.Dataset) -> str:
    """Toy points: raw points; digits: local features; other images: FID."""
    if not dataset.image:
        return "fd_points"
    return "fd_local" if features.features_path(dataset.spec.partition(":")[0]).is_file() else "fid"


def preflight(config: dict) -> Path | None:
    """What a run's FID evaluation needs, checked before anything trains or is queued: at least
    `fid_min_samples()` samples and the weights file ($DSTAB_FID_WEIGHTS, torch.hub's cache, or
    downloaded now). Returns the weights' path, or None when the run evaluates no FID; DstabError
    (one line) when the evaluation could not run."""
    if not config.get("eval_every"):
        return None
    metric = config["eval_metric"]
    if metric == "auto":
        metric = auto_metric(data.load(config["dataset"]))
    if metric != "fid":
        return None
    check_fid_samples(config["eval_samples"])
    return require_weights()


# --- reference statistics, cached ----------------------------------------------------------------
def cache_dir() -> Path:
    return user_cache_dir() / "fd-stats"


REFERENCE_FEATURES = 10_000  # rows of the reference kept for KID and PRDC (a seeded subset beyond that)
FLOOR_DRAWS = 20  # real-vs-reference draws behind a metric's floor


class Reference:
    """A dataset's features under one extractor: the Gaussian fit of all of them (FD), a seeded
    subset of at most REFERENCE_FEATURES rows with its KID self-term and k-NN radii (KID, PRDC)."""

    def __init__(self, mu, sigma, feats):
        self.mu, self.sigma, self.feats = mu, sigma, np.asarray(feats, dtype=np.float64)
        self._kid_term = self._radii = None

    @property
    def kid_term(self) -> float:
        if self._kid_term is None:
            self._kid_term = featmetrics.reference_term(self.feats)
        return self._kid_term

    @property
    def radii(self) -> np.ndarray:
        if self._radii is None:
            self._radii = featmetrics.knn_radii(self.feats, featmetrics.PRDC_K)
        return self._radii


def _cache_path(ext: Extractor, dataset: data.Dataset, what: str) -> Path:
    digest = hashlib.sha256(f"{ext.metric}/{ext.key}/{dataset.spec}/{tuple(dataset.data.shape)}{what}".encode())
    return cache_dir() / f"{digest.hexdigest()[:24]}.npz"


def _store(path: Path, **arrays) -> None:
    try:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(path, buf.getvalue())
    except OSError:
        pass  # a read-only or full cache only costs recomputation


def reference(ext: Extractor, dataset: data.Dataset) -> Reference:
    """The dataset's reference under `ext`, computed once per (extractor, dataset) and cached."""
    path = _cache_path(ext, dataset, "/reference-v2")
    if path.is_file():
        with np.load(path) as z:
            return Reference(z["mu"], z["sigma"], z["feats"])
    feats = ext(dataset.data)
    mu, sigma = gaussian_stats(feats)
    if len(feats) > REFERENCE_FEATURES:
        keep = np.random.default_rng(0).choice(len(feats), REFERENCE_FEATURES, replace=False)
        feats = feats[np.sort(keep)]
    _store(path, mu=mu, sigma=sigma, feats=feats.astype(np.float32))
    return Reference(mu, sigma, feats)


def reference_stats(ext: Extractor, dataset: data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian fit of the whole dataset's features, computed once per (extractor, dataset)."""
    ref = reference(ext, dataset)
    return ref.mu, ref.sigma


def floor(ext: Extractor, dataset: data.Dataset, n: int, draws: int = FLOOR_DRAWS) -> dict:
    """The metric's floor at `n` samples: FD of n real images (drawn without replacement when the
    dataset has that many, else with) against the reference, over `draws` seeded draws, and the
    same for KID. A generator that matched the data exactly would score about this."""
    path = _cache_path(ext, dataset, f"/floor-{n}-{draws}")
    if path.is_file():
        with np.load(path) as z:
            return {k: float(z[k]) for k in z.files}
    ref, feats = reference(ext, dataset), ext(dataset.data)
    rng = np.random.default_rng(12345)
    fds, kids = [], []
    for _ in range(draws):
        rows = feats[rng.choice(len(feats), n, replace=n > len(feats))]
        fds.append(frechet_distance(*gaussian_stats(rows), ref.mu, ref.sigma))
        kids.append(featmetrics.kid(rows, ref.feats, reference_mean=ref.kid_term)[0])
    out = {"fd_mean": float(np.mean(fds)), "fd_sd": float(np.std(fds, ddof=1)), "kid_mean": float(np.mean(kids))}
    out.update(kid_sd=float(np.std(kids, ddof=1)), n=float(n), draws=float(draws))
    _store(path, **out)
    return out


def _point_floor(dataset_spec: str, metric: str, n: int, draws: int) -> dict:
    """MMD^2 or sliced W2 of n fresh points of a 2-D distribution (seeds 1000, 1001, ...) against the
    evaluator's reference points, over `draws` draws."""
    path = cache_dir() / hashlib.sha256(f"points/{dataset_spec}/{metric}/{n}/{draws}".encode()).hexdigest()[:24]
    path = path.with_suffix(".npz")
    if path.is_file():
        with np.load(path) as z:
            return {k: float(z[k]) for k in z.files}
    fn = {"mmd2": distmetrics.mmd2, "sw2": distmetrics.sliced_w2}[metric]
    ref = data.load(dataset_spec, seed=0).data[:REFERENCE_POINTS].double()
    values = []
    for i in range(draws):
        real = data.load(dataset_spec, seed=1000 + i).data
        values.append(fn(real[torch.randperm(len(real), generator=torch.Generator().manual_seed(i))[:n]], ref))
    out = {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)), "n": float(n), "draws": float(draws)}
    _store(path, **out)
    return out


def metric_floor(name: str, dataset_spec: str, draws: int = FLOOR_DRAWS) -> dict | None:
    """The floor of an evaluated metric (e.g. 'fd_local@1000x10ddim', 'mmd2@500x50ddim'): its mean and
    sd between real data and the reference at the same sample count, over `draws` draws, in the
    metric's own units; None where there is none to measure offline (FID or KID without cached
    Inception weights, mode counts, precision / recall / density / coverage)."""
    base, _, rest = name.removesuffix("#2").partition("@")
    n = int(rest.split("x")[0].split("~")[0])
    if base in ("mmd2", "sw2"):
        return _point_floor(dataset_spec, base, n, draws)
    feature = {"fd_local": "fd_local", "kid_local": "fd_local", "fid": "fid", "kid": "fid", "fd_points": "fd_points"}
    if base not in feature or (feature[base] == "fid" and inception_weights(None, download=False) is None):
        return None
    dataset = data.load(dataset_spec)
    f = floor(extractor(feature[base], dataset), dataset, n, draws)
    kind = "kid" if base.startswith("kid") else "fd"
    return {"mean": f[f"{kind}_mean"], "sd": f[f"{kind}_sd"], "n": f["n"], "draws": f["draws"]}


EVAL_CHUNK = 1000  # samples generated per batch: bounds the sampler's memory at 10k-50k samples


def chunk_seeds(seed: int, n: int) -> list[tuple[int, int]]:
    """(noise seed, size) of each batch of an n-sample evaluation: one batch of seed `seed` up to
    EVAL_CHUNK samples (what every evaluation drew before batching), else EVAL_CHUNK-sized batches
    whose seeds are hashed from (seed, batch index), so they repeat on every device and run."""
    if n <= EVAL_CHUNK:
        return [(int(seed), n)]
    out = []
    for k, start in enumerate(range(0, n, EVAL_CHUNK)):
        digest = hashlib.sha256(f"{int(seed)}/chunk/{k}".encode()).digest()
        out.append((int.from_bytes(digest[:8], "little") & ((1 << 63) - 1), min(EVAL_CHUNK, n - start)))
    return out


@torch.no_grad()
def generate(
    modules: dict, diffusion, n: int, seed: int, sampler_steps: int, shape, device, sampler="ddim", amp=False
) -> torch.Tensor:
    """n EMA samples: DDIM (eta 0) or ancestral DDPM for a DM, G(z) for a GAN, in batches of
    EVAL_CHUNK with the noise of `chunk_seeds`; under bf16 autocast with `amp` (as the model trains).
    x0 estimates are clipped as the Diffusion says (`Diffusion.clip_for`), as `dstab sample` clips them."""
    net = modules["model"] if diffusion is not None else modules["generator"]
    was_training = net.training
    net.eval()
    device = torch.device(device)
    cast = torch.autocast(device.type, torch.bfloat16) if amp else contextlib.nullcontext()
    try:
        out = []
        for chunk_seed, size in chunk_seeds(seed, n):
            noise = NoiseSource(chunk_seed, (size, *shape))
            with cast:
                if diffusion is None:
                    x = net(noise.latent(net.latent_shape).to(device))
                elif sampler == "ddpm":
                    x = diffusion.ddpm_sample(net, noise, device=device)
                else:
                    x = diffusion.ddim_sample(net, noise, steps=sampler_steps, eta=0.0, device=device)
            out.append(x.float().cpu())
        return out[0] if len(out) == 1 else torch.cat(out)
    finally:
        net.train(was_training)


def feature_metric_names(metric: str) -> dict[str, str]:
    """The metrics an image evaluation reports beside its FD, on the same features: KID, its
    standard error and PRDC; named 'kid' etc. for Inception features, 'kid_local' etc. otherwise."""
    tail = "" if metric == "fid" else "_local"
    return {"kid": f"kid{tail}", "kid_se": f"kid{tail}_se"} | {
        m: m + tail for m in ("precision", "recall", "density", "coverage")
    }


class TrainingEvaluator:
    """The trainer's periodic metrics of EMA samples against the dataset: FD/FID, on image
    features also KID (with its standard error) and precision / recall / density / coverage, and
    for 2-D point data the distribution metrics of `distmetrics` (FD on raw points sees only
    means and covariances). The sampling noise comes from the fixed seeds eval_seed ..
    eval_seed + eval_seeds - 1, the same at every evaluation of every run, so curves differ by the
    model only; with several seeds every metric is their mean. `repeat(...)` evaluates once more
    with other seeds (the next eval_seeds after those): the spread between the two measures the
    evaluation's own noise."""

    def __init__(self, cfg, dataset: data.Dataset, device="cpu", amp: bool = False):
        self.cfg, self.dataset, self.device, self.amp = cfg, dataset, device, amp
        metric = auto_metric(dataset) if cfg.eval_metric == "auto" else cfg.eval_metric
        if metric == "fid":
            check_fid_samples(cfg.eval_samples)
        self.ext = extractor(metric, dataset, device)
        self.ref = reference(self.ext, dataset)
        steps = cfg.eval_sampler_steps if cfg.kind == "dm" else None
        extra = POINT_METRICS if not dataset.image else tuple(feature_metric_names(metric).values())
        sampler = cfg.eval_sampler
        self.names = {m: metric_name(m, cfg.eval_samples, steps, cfg.eval_seeds, sampler) for m in (metric, *extra)}
        self.name = self.names[metric]
        self.features = {k: self.names[v] for k, v in feature_metric_names(metric).items()} if dataset.image else {}
        # one fixed draw of the distribution for every run, whatever its data_seed
        self.points = None if dataset.image else data.load(dataset.spec, seed=0).data[:REFERENCE_POINTS].double()

    def _one(self, x: torch.Tensor) -> dict:
        feats = self.ext(x)
        out = {self.name: frechet_distance(*gaussian_stats(feats), self.ref.mu, self.ref.sigma)}
        if self.features:
            out.update(self._feature_metrics(feats))
        if self.points is not None:
            out.update(self._point_metrics(x.double()))
        return out

    def _feature_metrics(self, feats: np.ndarray) -> dict:
        """KID and PRDC on at most REFERENCE_FEATURES samples (the first ones: the FD takes all): their
        cost grows with n^2 + n m, measured 40 CPU-s at 10k x 10k Inception rows, ~25x that at 50k."""
        n, ref = self.features, self.ref
        feats = feats[:REFERENCE_FEATURES]
        value, se = featmetrics.kid(feats, ref.feats, reference_mean=ref.kid_term)
        out = {n["kid"]: value, n["kid_se"]: se}
        pr = featmetrics.prdc(feats, ref.feats, featmetrics.PRDC_K, reference_radii=ref.radii)
        return out | {n[k]: v for k, v in pr.items()}

    def _point_metrics(self, x: torch.Tensor) -> dict:
        n = self.names
        out = {n["mmd2"]: distmetrics.mmd2(x, self.points), n["sw2"]: distmetrics.sliced_w2(x, self.points)}
        if self.dataset.spec == "toy2d:8gaussians":
            modes = distmetrics.mode_stats(x, data.EIGHT_GAUSSIANS_CENTRES, data.EIGHT_GAUSSIANS_STD)
            out.update({n["mode_coverage"]: modes["coverage"], n["mode_precision"]: modes["precision"]})
        return out

    def _evaluate(self, modules: dict, diffusion, first_seed: int) -> dict:
        c = self.cfg
        shape = self.dataset.sample_shape
        sampler = c.eval_sampler
        rows = [
            self._one(
                generate(
                    modules,
                    diffusion,
                    c.eval_samples,
                    seed,
                    c.eval_sampler_steps,
                    shape,
                    self.device,
                    sampler,
                    self.amp,
                )
            )
            for seed in range(first_seed, first_seed + c.eval_seeds)
        ]
        return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}

    def __call__(self, modules: dict, diffusion) -> dict:
        return self._evaluate(modules, diffusion, self.cfg.eval_seed)

    def repeat(self, modules: dict, diffusion) -> dict:
        """The same metrics from the next eval_seeds noise seeds, named `repeat_name(...)`."""
        values = self._evaluate(modules, diffusion, self.cfg.eval_seed + self.cfg.eval_seeds)
        return {repeat_name(k): v for k, v in values.items()}
