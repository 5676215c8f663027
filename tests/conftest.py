"""Shared test fixtures: tiny random-weight checkpoints (no trained zoo needed)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

from dstab import checkpoints, models
from dstab.diffusion import Diffusion
from tests import processes

# The suite runs on shared 2-core machines: one intra-op thread keeps it predictable.
torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _own_user_folders(tmp_path_factory):
    """The results cache and the run workspace default to the user's own folders (~/.cache/dstab,
    ~/.local/share/dstab): the suite uses a folder of its session instead, unless the caller set them."""
    root = tmp_path_factory.mktemp("user-folders")
    unset = [var for var in ("DSTAB_CACHE", "DSTAB_WORKSPACE") if not os.environ.get(var)]
    for var in unset:
        os.environ[var] = str(root / var.lower())
    yield
    for var in unset:
        os.environ.pop(var, None)


TINY_UNET = {
    "arch": "unet",
    "image_size": 8,
    "in_channels": 1,
    "model_channels": 8,
    "norm_groups": 4,
    "channel_mult": [1, 2],
    "num_res_blocks": 1,
    "attention_resolutions": [4],
}


def randomise(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Fill every parameter with noise (the UNet zero-initialises its output layers,
    which would make different models look identical)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    return module.eval()


def fill_deterministic(module, seed=0):
    """Every float tensor from a generator seeded by its key name, scaled so activations stay O(1)."""
    new = {}
    for key, value in module.state_dict().items():
        if not value.is_floating_point():
            new[key] = value
            continue
        digest = hashlib.sha256(f"{seed}/{key}".encode()).digest()
        gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))
        noise = torch.randn(value.shape, generator=gen)
        if key.endswith("running_var"):
            new[key] = 1.0 + 0.1 * noise.abs()
        elif value.dim() >= 2:
            new[key] = noise / math.sqrt(value[0].numel())
        elif key.endswith("weight"):
            new[key] = 1.0 + 0.1 * noise
        else:
            new[key] = 0.1 * noise
    module.load_state_dict(new)
    return module.eval()


@pytest.fixture
def tiny_unet():
    return randomise(models.build(TINY_UNET))


@pytest.fixture
def tiny_dm_checkpoint(tmp_path, tiny_unet):
    diffusion = Diffusion("linear", 25, "eps")
    header = checkpoints.make_header("dm", models.normalise(TINY_UNET), "digits", 7, 3, diffusion=diffusion.to_config())
    path = tmp_path / "tiny.safetensors"
    checkpoints.save(path, header, {"model": tiny_unet})
    return path


TOY_DM = {"arch": "mlp_denoiser", "data_dim": 2, "hidden": 16, "depth": 2, "time_dim": 8}
DIGITS_DM = TINY_UNET
DIGITS_GAN = {
    "generator": {"arch": "dcgan_g", "image_size": 8, "channels": 1, "nz": 8, "ngf": 8, "extra_layers": 1},
    "discriminator": {"arch": "dcgan_d", "image_size": 8, "channels": 1, "ndf": 8, "extra_layers": 1},
}
TOY_GAN = {
    "generator": {"arch": "mlp_g", "data_dim": 2, "latent_dim": 2, "hidden": 16, "depth": 2},
    "discriminator": {"arch": "mlp_d", "data_dim": 2, "hidden": 16, "depth": 2},
}


def _randomise_bn(module: torch.nn.Module, gen: torch.Generator) -> None:
    """Non-trivial running statistics, so eval-mode BatchNorm is not the identity."""
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
            m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))


def save_dm(path, arch, dataset, seed=0, prediction="eps"):
    torch.manual_seed(seed)
    model = models.build(arch)
    diffusion = Diffusion("linear", 1000, prediction)
    header = checkpoints.make_header("dm", arch, dataset, 0, seed, diffusion=diffusion.to_config())
    checkpoints.save(path, header, {"model": model})
    return path


def save_gan(path, arch, dataset, seed=0):
    torch.manual_seed(seed)
    g, d = models.build(arch["generator"]), models.build(arch["discriminator"])
    gen = torch.Generator().manual_seed(seed + 100)
    _randomise_bn(g, gen)
    _randomise_bn(d, gen)
    header = checkpoints.make_header(
        "gan", arch, dataset, 0, seed, gan={"loss": "non-saturating", "latent_shape": list(g.latent_shape)}
    )
    checkpoints.save(path, header, {"generator": g, "discriminator": d})
    return path


@pytest.fixture(scope="session")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpts")
    return {
        "toy_dm": save_dm(root / "toy_dm.safetensors", TOY_DM, "toy2d:8gaussians"),
        "toy_dm_b": save_dm(root / "toy_dm_b.safetensors", TOY_DM, "toy2d:8gaussians", seed=1),
        "toy_dm_x0": save_dm(root / "toy_dm_x0.safetensors", TOY_DM, "toy2d:8gaussians", prediction="x0"),
        "toy_dm_x0_b": save_dm(root / "toy_dm_x0_b.safetensors", TOY_DM, "toy2d:8gaussians", 1, "x0"),
        "toy_dm_x0_c": save_dm(root / "toy_dm_x0_c.safetensors", TOY_DM, "toy2d:8gaussians", 2, "x0"),
        "digits_dm": save_dm(root / "digits_dm.safetensors", DIGITS_DM, "digits"),
        "digits_gan": save_gan(root / "digits_gan.safetensors", DIGITS_GAN, "digits"),
        "digits_gan_b": save_gan(root / "digits_gan_b.safetensors", DIGITS_GAN, "digits", seed=1),
        "toy_gan": save_gan(root / "toy_gan.safetensors", TOY_GAN, "toy2d:8gaussians"),
    }


@pytest.fixture
def caches(tmp_path, monkeypatch):
    """A user cache (tmp/cache) and a zoo root (tmp/zoo, whose results/ is the shipped cache) of this test's own."""
    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DSTAB_ZOO", str(tmp_path / "zoo"))
    return tmp_path


def write_zoo(root: Path, runs: dict) -> None:
    """A zoo in the real one's layout over given files: runs = {id: (kind, groups, {stage: source file})}."""
    entries = {}
    for eid, (kind, groups, stages) in runs.items():
        files = {}
        for stage, src in stages.items():
            dst = root / eid / f"{stage}.safetensors"
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
            files[stage] = {"path": f"{eid}/{stage}.safetensors", "step": 0, "sha256": checkpoints.file_sha256(dst)}
        entries[eid] = {"id": eid, "kind": kind, "groups": groups, "checkpoints": files}
    (root / "manifest.json").write_text(json.dumps({"entries": entries, "scale": "test"}))


def module_state(module: torch.nn.Module) -> dict:
    """Everything an analysis must leave alone: weights, requires_grad, mode, device."""
    return {
        "tensors": {k: v.detach().clone() for k, v in module.state_dict().items()},
        "requires_grad": {k: p.requires_grad for k, p in module.named_parameters()},
        "training": [m.training for m in module.modules()],
        "device": {str(p.device) for p in module.parameters()},
    }


def assert_unchanged(module: torch.nn.Module, before: dict) -> None:
    after = module_state(module)
    assert after["requires_grad"] == before["requires_grad"]
    assert after["training"] == before["training"]
    assert after["device"] == before["device"]
    for k, v in before["tensors"].items():
        assert torch.equal(after["tensors"][k], v), k


_SESSION_MAIN = sys.modules["__main__"]


@pytest.fixture(autouse=True)
def _main_module_kept():
    """Streamlit's script runner (AppTest runs it in this process) installs the page's module as
    sys.modules["__main__"] and leaves it there; a later spawn-started child (torch.multiprocessing)
    would then re-run app.py as its main. Each test starts and ends with the session's own __main__
    (module-scoped fixtures may have run the app before a test starts)."""
    sys.modules["__main__"] = _SESSION_MAIN
    yield
    sys.modules["__main__"] = _SESSION_MAIN


@pytest.fixture(scope="session", autouse=True)
def _interruptible():
    """A SIGTERM or SIGHUP to the test session ends it as Ctrl-C does: every fixture's teardown runs, so the
    processes tests started are stopped (tests/processes.py)."""
    processes.interruptible()


@pytest.fixture(autouse=True)
def _stop_the_runs_a_test_queued(monkeypatch):
    """Every background run a test queued in this process (runs.start, a sweep, the CLI's `runs start`) is
    stopped when the test ends, passed, failed or interrupted: none outlives the test that started it."""
    from dstab import runs

    roots, real = set(), runs.queue

    def queue(name, config, request, **kw):
        path = real(name, config, request, **kw)
        roots.add(path.parent)
        processes.track_runs(path.parent)
        return path

    monkeypatch.setattr(runs, "queue", queue)
    yield
    for root in roots:
        processes.stop_runs(root)
