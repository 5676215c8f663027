"""improved-/guided-diffusion state dicts through checkpoints.load."""

import json

import pytest
import torch

from dstab import checkpoints, models, sampling
from dstab.diffusion import NoiseSource
from dstab.errors import DstabError
from dstab.importers.openai import PRESETS, _matching_preset, arch_from_flags, weight_facts
from tests.conftest import fill_deterministic

# a guided-diffusion model in miniature: every option the ImageNet models use
TINY_GUIDED = {
    "arch": "unet",
    "image_size": 8,
    "in_channels": 3,
    "model_channels": 32,
    "num_res_blocks": 1,
    "attention_resolutions": [8, 4],
    "channel_mult": [1, 2],
    "num_classes": 10,
    "num_head_channels": 16,
    "use_new_attention_order": True,
    "resblock_updown": True,
    "learn_sigma": True,
}
TINY_FLAGS = {"image_size": 8, "num_head_channels": 16, "use_new_attention_order": True, "diffusion_steps": 50}


@pytest.fixture
def tiny_guided_file(tmp_path):
    # saved the way guided-diffusion's train_util saves: torch.save(state_dict) as ema_{rate}_{step:06d}.pt
    model = fill_deterministic(models.build(TINY_GUIDED))
    path = tmp_path / "ema_0.9999_001200.pt"
    torch.save(model.state_dict(), path)
    return path, model


def test_guided_state_dict_loads_with_full_key_coverage_and_same_outputs(tiny_guided_file):
    path, original = tiny_guided_file
    bundle = checkpoints.load(path, flags=TINY_FLAGS)
    assert bundle.kind == "dm" and bundle.header["step"] == 1200
    assert bundle.header["imported_from"]["format"] == "guided-diffusion"
    assert bundle.header["imported_from"]["ema_rate"] == 0.9999
    assert bundle.model.state_dict().keys() == torch.load(path, weights_only=True).keys()
    assert bundle.header["arch"]["num_classes"] == 10  # read from label_emb, not the 1000 of ImageNet
    assert bundle.diffusion.to_config() == {
        "schedule": "linear",
        "T": 50,
        "prediction": "eps",
        "learn_sigma": True,
        "clip_denoised": True,
    }
    x, t, y = torch.randn(2, 3, 8, 8), torch.tensor([0, 49]), torch.tensor([1, 9])
    with torch.no_grad():
        assert torch.equal(bundle.model(x, t, y), original(x, t, y))


def test_sidecar_json_supplies_the_flags(tiny_guided_file):
    path, _ = tiny_guided_file
    # the tools' own spelling: argparse strings
    flags = {"image_size": "8", "num_head_channels": "16", "use_new_attention_order": "True", "diffusion_steps": "50"}
    path.with_suffix(".json").write_text(json.dumps(flags))
    bundle = checkpoints.load(path)
    assert bundle.header["imported_from"]["flags_from"].startswith("sidecar")
    assert bundle.diffusion.T == 50 and bundle.header["arch"]["use_new_attention_order"] is True


def test_improved_diffusion_rescales_timesteps(tmp_path):
    arch = {"arch": "unet", "image_size": 8, "in_channels": 3, "model_channels": 32, "channel_mult": [1, 2]}
    model = fill_deterministic(models.build(arch))
    path = tmp_path / "model000500.pt"
    torch.save(model.state_dict(), path)
    bundle = checkpoints.load(
        path, flags={"image_size": 8, "diffusion_steps": 4000, "attention_resolutions": "4", "num_heads": 1}
    )
    # improved-diffusion defaults rescale_timesteps=True: the network sees t * 1000 / 4000
    assert bundle.header["arch"]["time_scale"] == 0.25
    assert bundle.header["imported_from"]["format"] == "improved-diffusion" and bundle.header["step"] == 500
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(bundle.model(x, torch.tensor([400])), model(x, torch.tensor([100])), atol=1e-6)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_published_shapes_pick_their_preset(preset):
    with torch.device("meta"):
        state = models.build(arch_from_flags(PRESETS[preset])).state_dict()
    assert _matching_preset(weight_facts(state)) == preset


def test_cifar10_preset_facts():
    f = PRESETS["improved-diffusion-cifar10"]
    arch, diffusion = arch_from_flags(f), models.normalise(arch_from_flags(f))
    assert arch["channel_mult"] == [1, 2, 2, 2] and arch["attention_resolutions"] == [16, 8]
    assert arch["time_scale"] == 0.25 and diffusion["learn_sigma"] and arch["num_heads"] == 4


def test_imported_dm_samples_with_its_schedule_and_learned_variance(tiny_guided_file):
    path, _ = tiny_guided_file
    bundle = checkpoints.load(path, flags={**TINY_FLAGS, "diffusion_steps": 40})
    a = sampling.generate(bundle, 2, seed=3, sampler="ddpm")
    # the same NoiseSource (x_T, step noise, class labels) by hand through the same schedule: the same images
    noise = NoiseSource(3, (2, 3, 8, 8))
    b = bundle.diffusion.ddpm_sample(bundle.model, noise, y=noise.labels(10))
    assert a.shape == (2, 3, 8, 8) and torch.equal(a, b)
    assert bundle.diffusion.learn_sigma and bundle.diffusion.T == 40
    # learned variance is used: without the variance channels the samples differ
    bundle.diffusion.learn_sigma = False
    fixed = bundle.diffusion.ddpm_sample(lambda x, t, y: bundle.model(x, t, y)[:, :3], noise, y=noise.labels(10))
    assert (fixed - a).abs().max() > 1e-3


def test_flags_contradicting_weights_are_named(tiny_guided_file):
    path, _ = tiny_guided_file
    with pytest.raises(DstabError, match=r"num_channels=64 but the weights have 32.*learn_sigma=False"):
        checkpoints.load(path, flags={**TINY_FLAGS, "num_channels": 64, "learn_sigma": False})


def test_missing_flags_are_asked_for(tiny_guided_file):
    path, _ = tiny_guided_file
    with pytest.raises(DstabError, match="do not say the image size.*improved-diffusion-cifar10"):
        checkpoints.load(path)


def test_unknown_preset_and_flag(tiny_guided_file):
    path, _ = tiny_guided_file
    with pytest.raises(DstabError, match="unknown preset 'cifar'"):
        checkpoints.load(path, preset="cifar")
    with pytest.raises(DstabError, match=r"unknown guided-diffusion flags \['num_chanels'\]"):
        checkpoints.load(path, flags={**TINY_FLAGS, "num_chanels": 32})


def test_ddp_prefix_is_stripped(tmp_path, tiny_guided_file):
    _, model = tiny_guided_file
    path = tmp_path / "wrapped.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)
    assert checkpoints.load(path, flags=TINY_FLAGS).header["arch"]["model_channels"] == 32


def test_unknown_layout_names_the_closest(tmp_path, tiny_guided_file):
    _, model = tiny_guided_file
    state = {k.replace("input_blocks", "down_blocks"): v for k, v in model.state_dict().items()}
    path = tmp_path / "renamed.pt"
    torch.save(state, path)
    with pytest.raises(DstabError, match=r"closest is improved/guided-diffusion UNet.*'input_blocks.0.0.weight'"):
        checkpoints.load(path)


def test_code_running_pickle_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"net": torch.nn.Linear(2, 2)}, path)  # a whole module: unpickling would run code
    with pytest.raises(DstabError, match="refused"):
        checkpoints.load(path)


def test_partial_unet_is_explained_not_a_traceback(tmp_path, tiny_guided_file):
    _, model = tiny_guided_file
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("input_blocks.1.")}
    path = tmp_path / "partial.pt"
    torch.save(state, path)
    with pytest.raises(DstabError, match="look like an improved/guided-diffusion UNet.*incomplete: no 'input_blocks.1"):
        checkpoints.load(path, flags=TINY_FLAGS)
