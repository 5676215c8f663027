"""Frechet distances: closed form, local features, FID weight loading, the trainer's metric."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dstab import data
from dstab.analysis import features, fid
from dstab.errors import DstabError
from dstab.runs import runner
from dstab.runs.runmetrics import RunMetrics
from tests.training_helpers import one_thread, tiny_dm  # noqa: F401 (one_thread is a fixture)


def test_frechet_distance_equals_closed_form_for_two_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, -1.0, 0.5])
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 1.0])
    want = np.sum((mu1 - mu2) ** 2) + np.sum(a + b - 2 * np.sqrt(a * b))
    assert fid.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(want, rel=1e-9)
    # rotating both covariances by the same orthogonal matrix leaves the distance unchanged
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((3, 3)))
    rotated = fid.frechet_distance(q @ mu1, q @ np.diag(a) @ q.T, q @ mu2, q @ np.diag(b) @ q.T)
    assert rotated == pytest.approx(want, rel=1e-6)


def test_fd_from_samples_approaches_the_closed_form():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((200_000, 2)) * [1.0, 2.0]
    y = rng.standard_normal((200_000, 2)) * [3.0, 2.0] + [1.0, 0.0]
    assert fid.fd(x, y) == pytest.approx(1.0 + (1 + 9 - 6) + 0.0, abs=0.05)


@pytest.fixture(scope="module")
def digits_features():
    ds = data.load("digits")
    return ds, fid.extractor("fd_local", ds)


def test_local_fd_of_data_against_itself_is_zero_and_grows_with_noise(digits_features):
    ds, ext = digits_features
    x = ds.data[:600]
    clean = ext(x)
    assert clean.shape == (600, features.FEATURE_DIM)
    assert abs(fid.fd(clean, clean)) < 1e-6
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(x.shape, generator=gen)
    values = [fid.fd(clean, ext(x + s * noise)) for s in (0.05, 0.2, 0.5, 1.0)]
    assert all(a < b for a, b in zip(values, values[1:]))
    assert values[0] < 1.0 < 100.0 < values[-1]


def test_shipped_classifier_records_its_test_accuracy():
    net, record = features.load_classifier(features.features_path("digits"))
    assert record["test_accuracy"] >= 0.97 and record["test_size"] == 359
    x = data.load("digits").data[:8]
    assert net(x).shape == (8, 10) and net.features(x).shape == (8, 64)


def test_bad_feature_network_files_are_refused(tmp_path):
    with pytest.raises(DstabError, match="features train"):
        features.load_classifier(tmp_path / "none.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(DstabError, match="damaged"):
        features.load_classifier(tmp_path / "junk.safetensors")


def test_fid_weights_offline_and_bad_files(tmp_path, monkeypatch):
    monkeypatch.delenv("DSTAB_FID_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    assert fid.inception_weights() is None  # nothing cached, no download asked for
    cached = tmp_path / "hub" / "checkpoints" / fid.FID_WEIGHTS_NAME
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert fid.inception_weights() == cached
    with pytest.raises(DstabError, match="does not exist"):
        fid.inception_weights(tmp_path / "missing.pth")
    monkeypatch.setenv("DSTAB_FID_WEIGHTS", str(cached))
    assert fid.inception_weights() == cached
    truncated = tmp_path / "truncated.pth"
    torch.save({"w": torch.zeros(3)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:40])
    with pytest.raises(DstabError, match="cannot be read"):
        fid.load_inception(truncated)
    not_a_state = tmp_path / "list.pth"
    torch.save([1, 2, 3], not_a_state)
    with pytest.raises(DstabError, match="not a state dict"):
        fid.load_inception(not_a_state)


def test_fid_weights_with_wrong_keys_are_refused(tmp_path):
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(2, 2)}, wrong)
    with pytest.raises(DstabError, match="not pytorch-fid's FID Inception weights"):
        fid.load_inception(wrong)


def test_metric_names_carry_samples_and_steps():
    assert fid.metric_name("fd_local", 500, 50) == "fd_local@500x50ddim"
    assert fid.metric_name("fid", 1000, None) == "fid@1000"
    assert fid.metric_label("fd_local@500x50ddim") == "FD (local features), 500 samples, 50 DDIM steps"
    assert fid.metric_label("fd_points@64x5ddim").startswith("FD (raw 2-D points)")
    assert "FID" not in fid.metric_label("fd_local@10")


@pytest.mark.usefixtures("one_thread")
def test_trainer_writes_fd_points_for_toy_data(tmp_path, monkeypatch):
    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path / "cache"))
    cfg = tiny_dm(steps=4, eval_every=2, eval_samples=64, eval_sampler_steps=5, checkpoint_every=None)
    runner.start(tmp_path / "r", cfg, echo=False)
    metrics = RunMetrics.read(tmp_path / "r" / "metrics.sqlite")
    rows = [(s, v) for s, n, v, _ in metrics.rows() if n == "fd_points@64x5ddim"]
    assert [s for s, _ in rows] == [2, 4] and all(v > 0 for _, v in rows)
    assert len(list((tmp_path / "cache" / "fd-stats").glob("*.npz"))) == 1  # reference stats cached


@pytest.mark.usefixtures("one_thread")
def test_gan_runs_get_the_metric_without_sampler_steps(tmp_path, monkeypatch):
    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path / "cache"))
    arch = {
        "generator": {"arch": "mlp_g", "data_dim": 2, "latent_dim": 2, "hidden": 8, "depth": 2},
        "discriminator": {"arch": "mlp_d", "data_dim": 2, "hidden": 8, "depth": 2},
    }
    cfg = tiny_dm(kind="gan", arch=arch, steps=2, timesteps={"name": "uniform"}, eval_every=2, eval_samples=32)
    runner.start(tmp_path / "g", cfg, echo=False)
    names = {n for _, n, _, _ in RunMetrics.read(tmp_path / "g" / "metrics.sqlite").rows()}
    assert "fd_points@32" in names and "d_loss" in names


def test_metric_names_carry_the_number_of_noise_seeds():
    assert fid.metric_name("mmd2", 500, 50, seeds=3) == "mmd2@500x50ddim~3"
    assert (
        fid.metric_label("mmd2@500x50ddim~3")
        == "MMD^2 (RBF, 2-D points), 500 samples, 50 DDIM steps, mean of 3 noise seeds"
    )


def _zoo_toy_evaluation(**over):
    from dstab import checkpoints
    from dstab.training.config import TrainConfig

    bundle = checkpoints.load(checkpoints_dir() / "toy2d" / "dm-eps-s0" / "final.safetensors")
    cfg = TrainConfig(dataset="toy2d:8gaussians", arch=bundle.header["arch"], **over)
    ev = fid.TrainingEvaluator(cfg, data.load("toy2d:8gaussians"))
    return ev, bundle


def checkpoints_dir():
    from pathlib import Path

    return Path(__file__).resolve().parents[1] / "checkpoints"


@pytest.mark.usefixtures("one_thread")
def test_toy_evaluator_does_not_clip_points_and_sees_the_modes(tmp_path, monkeypatch):
    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path))
    ev, bundle = _zoo_toy_evaluation(eval_samples=500, eval_sampler_steps=50)
    out = ev({"model": bundle.model}, bundle.diffusion)
    assert out["fd_points@500x50ddim"] < 0.01  # 0.48 when x0 estimates were clipped to [-1, 1]^2
    assert out["mode_coverage@500x50ddim"] == 8 and out["mode_precision@500x50ddim"] > 0.5
    assert 0 < out["mmd2@500x50ddim"] < 0.1 and out["sw2@500x50ddim"] < 0.3
    # the same fixed noise at every evaluation: a second call repeats every number exactly
    assert ev({"model": bundle.model}, bundle.diffusion) == out


@pytest.mark.usefixtures("one_thread")
def test_several_evaluation_seeds_are_averaged(tmp_path, monkeypatch):
    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path))
    singles = []
    for seed in (4, 5):
        ev, bundle = _zoo_toy_evaluation(eval_samples=64, eval_sampler_steps=5, eval_seed=seed)
        singles.append(ev({"model": bundle.model}, bundle.diffusion))
    ev, bundle = _zoo_toy_evaluation(eval_samples=64, eval_sampler_steps=5, eval_seed=4, eval_seeds=2)
    both = ev({"model": bundle.model}, bundle.diffusion)
    assert singles[0] != singles[1]
    for name, value in both.items():
        single = name.removesuffix("~2")
        assert value == pytest.approx((singles[0][single] + singles[1][single]) / 2, rel=1e-12)


def test_digit_samples_are_still_clipped_to_the_image_range():
    from dstab.diffusion import Diffusion, NoiseSource

    class Far(torch.nn.Module):  # predicts eps = -10 x_t: x0 estimates far outside [-1, 1]
        def forward(self, x, t, y=None):
            return -10.0 * x

    diffusion = Diffusion.from_config({"schedule": "linear", "T": 50, "prediction": "eps"})
    shape = (1, 8, 8)
    x = fid.generate({"model": Far()}, diffusion, 4, 0, 5, shape, "cpu")
    want = diffusion.ddim_sample(Far(), NoiseSource(0, (4, *shape)), steps=5, eta=0.0, clip=True)
    assert diffusion.clip_for(1 + len(shape)) == 1.0 and diffusion.clip_for(2) is None  # images only
    assert torch.equal(x, want) and x.abs().max() <= 1.0 + 1e-6
