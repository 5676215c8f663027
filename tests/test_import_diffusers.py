"""diffusers UNet2DModel folders and pipelines against diffusers itself."""

import json

import pytest
import torch

pytest.importorskip("diffusers")  # a dependency in requirements.txt; dstab itself imports it lazily

from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel  # noqa: E402
from diffusers.schedulers import scheduling_ddpm  # noqa: E402

from dstab import checkpoints, models, sampling  # noqa: E402
from dstab.diffusion import NoiseSource  # noqa: E402
from dstab.errors import DstabError  # noqa: E402


def tiny_unet(out_channels=3):
    torch.manual_seed(0)
    return UNet2DModel(
        sample_size=8,
        in_channels=3,
        out_channels=out_channels,
        layers_per_block=1,
        block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
    ).eval()


def save_folder(folder, unet, **scheduler):
    unet.save_pretrained(folder)  # config.json + diffusion_pytorch_model.safetensors
    DDPMScheduler(**scheduler).save_pretrained(folder)  # scheduler_config.json
    return folder


def test_unet_folder_matches_diffusers_outputs(tmp_path):
    unet = tiny_unet()
    folder = save_folder(tmp_path / "unet", unet, num_train_timesteps=1000, variance_type="fixed_large")
    bundle = checkpoints.load(folder)
    assert bundle.kind == "dm" and bundle.header["imported_from"]["format"] == "diffusers"
    assert bundle.model.unet.state_dict().keys() == unet.state_dict().keys()
    assert bundle.diffusion.to_config() == {
        "schedule": "linear",
        "T": 1000,
        "prediction": "eps",
        "learn_sigma": False,
        "fixed_variance": "large",
        "clip_denoised": True,
    }
    x, t = torch.randn(2, 3, 8, 8), torch.tensor([5, 900])
    with torch.no_grad():
        assert torch.equal(bundle.model(x, t), unet(x, t).sample)
    assert sampling.sample_shape(bundle) == (3, 8, 8)


@pytest.mark.parametrize("variance_type, out_channels", [("fixed_large", 3), ("learned_range", 6)])
def test_ddpm_sampling_matches_diffusers_scheduler(tmp_path, monkeypatch, variance_type, out_channels):
    unet = tiny_unet(out_channels)
    sched = {"num_train_timesteps": 12, "beta_schedule": "squaredcos_cap_v2", "variance_type": variance_type}
    pipe = DDPMPipeline(unet=unet, scheduler=DDPMScheduler(**sched))
    pipe.save_pretrained(tmp_path / "pipe")  # model_index.json, unet/, scheduler/
    bundle = checkpoints.load(tmp_path / "pipe")
    ours = sampling.generate(bundle, 2, seed=11)
    # diffusers' own loop, its random draws replaced by the same NoiseSource
    noise = NoiseSource(11, (2, 3, 8, 8))
    monkeypatch.setattr(scheduling_ddpm, "randn_tensor", lambda shape, **kw: noise.step_noise(int(current[0])))
    scheduler, x, current = pipe.scheduler, noise.x_T(), [0]
    scheduler.set_timesteps(12)
    with torch.no_grad():
        for t in scheduler.timesteps:
            current[0] = t
            x = scheduler.step(unet(x, t).sample, t, x).prev_sample
    assert torch.allclose(ours, x, atol=1e-4), (ours - x).abs().max()


def test_ddpm_cifar10_32_size():
    # google/ddpm-cifar10-32's unet/config.json
    config = {
        "_class_name": "UNet2DModel",
        "act_fn": "silu",
        "attention_head_dim": None,
        "block_out_channels": [128, 256, 256, 256],
        "center_input_sample": False,
        "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"],
        "downsample_padding": 0,
        "flip_sin_to_cos": False,
        "freq_shift": 1,
        "in_channels": 3,
        "layers_per_block": 2,
        "mid_block_scale_factor": 1,
        "norm_eps": 1e-06,
        "norm_num_groups": 32,
        "out_channels": 3,
        "sample_size": 32,
        "time_embedding_type": "positional",
        "up_block_types": ["UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
    }
    with torch.device("meta"):
        model = models.build({"arch": "diffusers_unet2d", "unet2d": config})
    assert models.count_parameters(model) == 35_746_307


def test_unsupported_scheduler_is_refused(tmp_path):
    folder = save_folder(tmp_path / "u", tiny_unet(), prediction_type="v_prediction")
    with pytest.raises(DstabError, match="prediction_type 'v_prediction' is not supported"):
        checkpoints.load(folder)
    sched = json.loads((folder / "scheduler_config.json").read_text())
    sched.update(prediction_type="epsilon", beta_start=0.001)
    (folder / "scheduler_config.json").write_text(json.dumps(sched))
    with pytest.raises(DstabError, match=r"linear betas 0.001..0.02 over 1000 steps differ"):
        checkpoints.load(folder)


def test_scheduler_from_another_model_is_refused(tmp_path):
    folder = save_folder(tmp_path / "u", tiny_unet(), variance_type="learned_range")
    with pytest.raises(DstabError, match="3 output channels but the scheduler's variance_type needs 6"):
        checkpoints.load(folder)


def test_missing_weights_are_named(tmp_path):
    folder = save_folder(tmp_path / "u", tiny_unet())
    (folder / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(DstabError, match="no diffusion_pytorch_model.safetensors"):
        checkpoints.load(folder)


def test_hessian_vector_products_through_diffusers_attention(tmp_path):
    # the fused CPU attention kernel has no derivative of its backward, so every Hessian of a diffusers
    # model with attention failed ("derivative for _scaled_dot_product_flash_attention_for_cpu_backward is
    # not implemented"); the wrapper differentiates through the composite kernel: H v equals the central
    # difference of gradients along v
    from dstab.analysis.hvp import HessianOperator
    from dstab.probes import Probe

    bundle = checkpoints.load(save_folder(tmp_path / "unet", tiny_unet(), num_train_timesteps=1000))
    x, noise, t = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8), torch.tensor([10, 600])

    def loss(model, x, noise, t):
        return bundle.diffusion.loss_terms(model, x, t, noise).mean()

    probe = Probe(bundle.model, loss, name="ddpm-tiny", kind="dm", data={"x": x, "noise": noise, "t": t})
    op = HessianOperator(probe)
    v = torch.randn(op.n, generator=torch.Generator().manual_seed(0))
    v /= v.norm()
    hv = op(v)

    def grad_at(eps: float) -> torch.Tensor:
        flat = (torch.cat([p.detach().reshape(-1) for p in op.leaves]) + eps * v).requires_grad_(True)
        (g,) = torch.autograd.grad(op._loss(op.unflatten(flat)), flat)
        return g

    fd = (grad_at(1e-3) - grad_at(-1e-3)) / 2e-3
    assert torch.isfinite(hv).all() and float(hv @ v) != 0.0
    assert float((hv - fd).norm() / fd.norm()) < 0.02  # float32 differences: 1e-3 steps, ~1% noise
    assert float(hv @ v) == pytest.approx(float(fd @ v), rel=0.02)


@pytest.mark.parametrize("link", ["weights", "unet-folder", "scheduler"])
def test_symlinks_in_a_folder_inside_the_allowed_roots_are_confined_like_it(tmp_path, monkeypatch, link):
    """Issue 27: a diffusers folder inside an allowed root whose weights file or unet/ is a symlink to a file
    outside the roots was read. Each file read from such a folder must lie inside the roots too; the same
    folder outside every root (a CLI user's own download) is read as before."""
    outside, root = tmp_path / "outside", tmp_path / "root"
    real = save_folder(outside / "real", tiny_unet())
    pipeline = root / "pipe"
    (pipeline / "scheduler").mkdir(parents=True)
    (pipeline / "model_index.json").write_text(json.dumps({"unet": ["diffusers", "UNet2DModel"]}))
    if link == "unet-folder":
        (pipeline / "unet").symlink_to(real, target_is_directory=True)
    else:
        save_folder(pipeline / "unet", tiny_unet())
        if link == "weights":
            (pipeline / "unet" / "diffusion_pytorch_model.safetensors").unlink()
            (pipeline / "unet" / "diffusion_pytorch_model.safetensors").symlink_to(
                real / "diffusion_pytorch_model.safetensors"
            )
    target = real / "scheduler_config.json"
    if link == "scheduler":
        (pipeline / "scheduler" / "scheduler_config.json").symlink_to(target)
    else:
        (pipeline / "scheduler" / "scheduler_config.json").write_text(target.read_text())
    monkeypatch.setenv("DSTAB_ALLOWED_ROOTS", str(root))
    with pytest.raises(DstabError, match=r"pipe/.* leads to .*outside/real/.*, outside the folders this server may"):
        checkpoints.load(pipeline)
    monkeypatch.setenv("DSTAB_ALLOWED_ROOTS", str(outside))  # the folder itself outside the roots: not confined
    assert checkpoints.load(pipeline).kind == "dm"
