"""DDPM variance and x0 clipping as each format's own code samples them.

improved-/guided-diffusion: gaussian_diffusion.p_mean_variance (FIXED_LARGE = the table
append(posterior_variance[1], betas[1:]), FIXED_SMALL = the posterior variance, LEARNED_RANGE
interpolates log beta_t and the clipped log posterior variance) with clip_denoised; which one a
model gets comes from script_util (improved: sigma_small=False -> large; guided: always large).
diffusers: DDPMScheduler.step itself, its noise replaced by dstab's NoiseSource.
"""

import json

import numpy as np
import pytest
import torch

from dstab import checkpoints, cli, models, sampling
from dstab.diffusion import Diffusion, NoiseSource
from dstab.errors import DstabError
from dstab.importers import openai
from tests.conftest import fill_deterministic

# an OpenAI-layout UNet in miniature (dstab's UNet has the same keys), RGB 8x8
TINY = {
    "arch": "unet",
    "image_size": 8,
    "in_channels": 3,
    "model_channels": 32,
    "num_res_blocks": 1,
    "attention_resolutions": [4],
    "channel_mult": [1, 2],
    "num_heads": 4,
}
FLAGS = {"image_size": 8, "diffusion_steps": 30, "noise_schedule": "cosine", "attention_resolutions": "4"}

# Ho et al.'s linear schedule at T = 1000: beta_t and the posterior variance (float64, by hand)
GOLDEN_T = [1, 10, 250, 999]
GOLDEN_LARGE = [0.00011991991991991993, 0.0002991991991991992, 0.00507997997997998, 0.02]
GOLDEN_SMALL = [5.4531876613021935e-05, 0.0002584636204081144, 0.005051719844085794, 0.01999998352656061]


def source_tables(schedule: str, T: int) -> dict:
    """improved-diffusion's GaussianDiffusion tables, written out from its formulas in float64."""
    if schedule == "linear":
        betas = np.linspace(1e-4 * 1000 / T, 0.02 * 1000 / T, T)
    else:  # betas_for_alpha_bar with the cosine alpha_bar, max_beta 0.999
        abar_of = lambda s: np.cos((s + 0.008) / 1.008 * np.pi / 2) ** 2  # noqa: E731
        betas = np.array([min(1 - abar_of((i + 1) / T) / abar_of(i / T), 0.999) for i in range(T)])
    abar = np.cumprod(1.0 - betas)
    abar_prev = np.append(1.0, abar[:-1])
    post = betas * (1.0 - abar_prev) / (1.0 - abar)
    return {
        "betas": betas,
        "abar": abar,
        "abar_prev": abar_prev,
        "large_log": np.log(np.append(post[1], betas[1:])),
        "small_log": np.log(np.append(post[1], post[1:])),
    }


@pytest.mark.parametrize("fixed, golden", [("large", GOLDEN_LARGE), ("small", GOLDEN_SMALL)])
def test_fixed_variance_golden_values(fixed, golden):
    d = Diffusion(schedule="linear", T=1000, fixed_variance=fixed)
    t = torch.tensor(GOLDEN_T)
    var = torch.exp(d.ddpm_log_variance(None, t, 1)).double().numpy()
    np.testing.assert_allclose(var, golden, rtol=1e-5)


def test_learned_range_interpolates_the_log_variances():
    d, tab = Diffusion(schedule="linear", T=1000, learn_sigma=True), source_tables("linear", 1000)
    t = torch.tensor(GOLDEN_T)
    v = torch.tensor([-1.0, -0.3, 0.4, 1.0])  # the model's variance output in [-1, 1]
    frac = (v.double().numpy() + 1) / 2
    want = frac * np.log(tab["betas"][GOLDEN_T]) + (1 - frac) * tab["small_log"][GOLDEN_T]
    np.testing.assert_allclose(d.ddpm_log_variance(v, t, 1).double().numpy(), want, rtol=1e-5)
    # the ends are the fixed tables themselves
    np.testing.assert_allclose(np.exp(want[[0, 3]]), [GOLDEN_SMALL[0], GOLDEN_LARGE[3]], rtol=1e-5)


def reference_chain(model, tab: dict, var_type: str, noise: NoiseSource, clip: bool) -> torch.Tensor:
    """p_sample_loop of improved-diffusion, from its formulas: x0 from eps, clip_denoised,
    q_posterior mean, then exp(0.5 log var) * noise for t > 0."""
    f = lambda a, t: torch.tensor(a[t], dtype=torch.float32)  # noqa: E731
    x = noise.x_T()
    for t in range(len(tab["betas"]) - 1, -1, -1):
        out = model(x, torch.full((x.shape[0],), t))
        eps, var_values = out[:, :3], out[:, 3:]
        x0 = (x - f(np.sqrt(1 - tab["abar"]), t) * eps) / f(np.sqrt(tab["abar"]), t)
        if clip:
            x0 = x0.clamp(-1, 1)
        b, ab, abp = tab["betas"][t], tab["abar"][t], tab["abar_prev"][t]
        mean = (b * np.sqrt(abp) / (1 - ab)) * x0 + ((1 - abp) * np.sqrt(1 - b) / (1 - ab)) * x
        if var_type == "learned_range":
            frac = (var_values + 1) / 2
            log_var = frac * f(np.log(tab["betas"]), t) + (1 - frac) * f(tab["small_log"], t)
        else:
            log_var = f(tab[f"{var_type}_log"], t)
        x = mean + torch.exp(0.5 * log_var) * noise.step_noise(t) if t > 0 else mean
    return x


def save_openai(path, learn_sigma: bool):
    model = fill_deterministic(models.build({**TINY, "learn_sigma": learn_sigma}))
    torch.save(model.state_dict(), path)
    return model


@pytest.mark.parametrize(
    "extra, learn_sigma, var_type, clip",
    [
        ({}, False, "large", True),  # improved-diffusion's default sigma_small=False
        ({"sigma_small": True}, False, "small", True),
        ({"sigma_small": True, "clip_denoised": False}, False, "small", False),
        ({"codebase": "guided-diffusion"}, False, "large", True),  # guided: no sigma_small, always large
        ({}, True, "learned_range", True),
        ({"clip_denoised": "False"}, True, "learned_range", False),  # argparse spelling
    ],
)
def test_openai_chain_uses_the_source_variance_and_clipping(tmp_path, extra, learn_sigma, var_type, clip):
    path = tmp_path / "model000100.pt"
    save_openai(path, learn_sigma)
    bundle = checkpoints.load(path, flags={**FLAGS, "learn_sigma": learn_sigma, **extra})
    model = bundle.model  # the network (with improved-diffusion's timestep rescaling) is tested elsewhere
    assert bundle.diffusion.clip_for(4) == (1.0 if clip else None)
    ours = sampling.generate(bundle, 2, seed=4)
    noise = NoiseSource(4, (2, 3, 8, 8))
    out3 = (lambda x, t: torch.cat([model(x, t), model(x, t)], 1)) if not learn_sigma else model
    with torch.no_grad():
        want = reference_chain(out3, source_tables("cosine", 30), var_type, noise, clip)
    assert torch.allclose(ours, want, atol=2e-4), (ours - want).abs().max()


def test_the_variance_choice_matters(tmp_path):
    path = tmp_path / "model000100.pt"
    save_openai(path, False)
    large = sampling.generate(checkpoints.load(path, flags=FLAGS), 2, seed=4)
    small = sampling.generate(checkpoints.load(path, flags={**FLAGS, "sigma_small": True}), 2, seed=4)
    assert (large - small).abs().max() > 1e-2


def test_guided_diffusion_refuses_sigma_small(tmp_path):
    path = tmp_path / "model.pt"
    save_openai(path, False)
    with pytest.raises(DstabError, match="guided-diffusion has no sigma_small flag"):
        checkpoints.load(path, flags={**FLAGS, "codebase": "guided-diffusion", "sigma_small": True})


def test_info_shows_variance_and_clipping(tmp_path, capsys):
    path, out = tmp_path / "model000100.pt", tmp_path / "id.safetensors"
    save_openai(path, False)
    assert cli.main(["convert", str(path), "-o", str(out), *[f"--flag={k}={v}" for k, v in FLAGS.items()]]) == 0
    assert "notice" not in capsys.readouterr().out  # the flags said the schedule
    assert checkpoints.load(out).diffusion.to_config()["fixed_variance"] == "large"
    assert cli.main(["info", str(out)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["sampling"] == {"variance": "fixed large: beta_t", "clip_x0": "[-1, 1]"}
    assert info["header"]["imported_from"]["flags"]["sigma_small"] is False


def test_convert_names_the_flag_when_the_schedule_comes_from_a_shape_match(tmp_path, monkeypatch, capsys):
    tiny_preset = {"codebase": "improved-diffusion", **FLAGS, "num_channels": 32, "num_res_blocks": 1}
    tiny_preset["channel_mult"] = "1,2"
    monkeypatch.setitem(openai.PRESETS, "tiny-cosine", tiny_preset)
    path, out = tmp_path / "model000100.pt", tmp_path / "id.safetensors"
    save_openai(path, False)
    assert cli.main(["convert", str(path), "-o", str(out)]) == 0
    notice = capsys.readouterr().out.splitlines()[0]
    assert notice.startswith("notice: the schedule was not given: preset tiny-cosine (matched by weight shapes)")
    assert "noise_schedule=cosine, diffusion_steps=30" in notice and "--flag noise_schedule=" in notice


diffusers = pytest.importorskip("diffusers")


def tiny_diffusers_unet(out_channels):
    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(
        sample_size=8,
        in_channels=3,
        out_channels=out_channels,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D",) * 2,
        up_block_types=("UpBlock2D",) * 2,
        norm_num_groups=4,
    )
    with torch.no_grad():  # large outputs, so that x0 estimates leave [-1, 1] and clipping shows
        for p in unet.parameters():
            p.normal_(0, 0.3)
    return unet.eval()


@pytest.mark.parametrize(
    "sched",
    [
        {"variance_type": "fixed_small", "clip_sample": True},
        {"variance_type": "fixed_small", "clip_sample": False},
        {"variance_type": "fixed_large", "clip_sample": False},
        {"variance_type": "fixed_small_log", "clip_sample": True, "clip_sample_range": 0.5},
        {"variance_type": "learned_range", "clip_sample": False},
    ],
)
def test_diffusers_chain_equals_ddpm_scheduler_step(tmp_path, monkeypatch, sched):
    from diffusers import DDPMScheduler
    from diffusers.schedulers import scheduling_ddpm

    unet = tiny_diffusers_unet(6 if sched["variance_type"] == "learned_range" else 3)
    scheduler = DDPMScheduler(num_train_timesteps=25, beta_schedule="squaredcos_cap_v2", **sched)
    unet.save_pretrained(tmp_path / "unet")
    scheduler.save_pretrained(tmp_path / "unet")
    bundle = checkpoints.load(tmp_path / "unet")
    assert bundle.diffusion.clip_for(4) == (sched.get("clip_sample_range", 1.0) if sched["clip_sample"] else None)
    ours = sampling.generate(bundle, 2, seed=9)
    noise, current = NoiseSource(9, (2, 3, 8, 8)), [0]
    monkeypatch.setattr(scheduling_ddpm, "randn_tensor", lambda shape, **kw: noise.step_noise(int(current[0])))
    x = noise.x_T()
    scheduler.set_timesteps(25)
    with torch.no_grad():
        for t in scheduler.timesteps:
            current[0] = t
            x = scheduler.step(unet(x, t).sample, t, x).prev_sample
    assert torch.allclose(ours, x, atol=1e-4, rtol=1e-4), (ours - x).abs().max()
    if not sched["clip_sample"]:  # the setting is honoured, not overridden: clipping would change the chain
        bundle.diffusion.clip_denoised = True
        assert (sampling.generate(bundle, 2, seed=9) - x).abs().max() > 1e-2


@pytest.mark.parametrize(
    "sched, match",
    [
        ({"variance_type": "fixed_large_log"}, "square root of log"),
        ({"variance_type": "learned"}, "predicts the log-variance directly"),
        ({"thresholding": True}, "dynamic thresholding"),
    ],
)
def test_diffusers_settings_dstab_cannot_reproduce_are_refused(tmp_path, sched, match):
    from dstab.importers.diffusers_folder import diffusion_from_scheduler

    with pytest.raises(DstabError, match=match):
        diffusion_from_scheduler(sched, "scheduler_config.json")


def test_header_round_trip_keeps_old_headers_unchanged():
    assert Diffusion().to_config() == {"schedule": "linear", "T": 1000, "prediction": "eps", "learn_sigma": False}
    d = Diffusion(schedule="cosine", T=10, clip_denoised=False, clip_range=0.5, fixed_variance="large")
    assert d.to_config()["clip_denoised"] is False and Diffusion.from_config(d.to_config()) == d
