"""`python -m dstab convert` for each imported format: the written file reloads without flags, same outputs."""

import subprocess
import sys

import pytest
import torch

from dstab import checkpoints, cli, models, sampling


def save_tiny_guided(path):
    arch = {
        "arch": "unet",
        "image_size": 8,
        "in_channels": 3,
        "model_channels": 32,
        "num_res_blocks": 1,
        "attention_resolutions": [4],
        "channel_mult": [1, 2],
        "resblock_updown": True,
        "learn_sigma": True,
        "num_heads": 4,  # guided-diffusion's default, which the flags below leave in place
    }
    torch.manual_seed(0)
    model = models.build(arch)
    for p in model.parameters():  # zero-initialised output layers would hide a wrong load
        torch.nn.init.normal_(p, std=0.05)
    torch.save(model.state_dict(), path)
    return model.eval()


def test_convert_guided_with_flags(tmp_path, capsys):
    src, out = tmp_path / "model001000.pt", tmp_path / "gd.safetensors"
    original = save_tiny_guided(src)
    argv = ["convert", str(src), "-o", str(out), "--flag", "image_size=8", "--flag", "diffusion_steps=100"]
    assert cli.main([*argv, "--dataset", "cifar10"]) == 0
    assert "from guided-diffusion" in capsys.readouterr().out
    bundle = checkpoints.load(out)
    assert bundle.header["dataset"] == "cifar10" and bundle.header["imported_from"]["format"] == "guided-diffusion"
    assert bundle.diffusion.T == 100 and bundle.diffusion.learn_sigma
    x, t = torch.randn(2, 3, 8, 8), torch.tensor([1, 99])
    with torch.no_grad():
        assert torch.equal(bundle.model(x, t), original(x, t))


def test_convert_dcgan_and_diffusers_round_trip(tmp_path):
    pytest.importorskip("diffusers")
    from diffusers import UNet2DModel

    g = models.build({"arch": "dcgan_g", "image_size": 64, "channels": 3, "nz": 10, "ngf": 4})
    torch.save(g.state_dict(), tmp_path / "netG_epoch_2.pth")
    torch.manual_seed(0)
    blocks = {"down_block_types": ("DownBlock2D",) * 2, "up_block_types": ("UpBlock2D",) * 2}
    unet = UNet2DModel(sample_size=8, block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4, **blocks)
    unet.save_pretrained(tmp_path / "unet")
    for src in (tmp_path / "netG_epoch_2.pth", tmp_path / "unet"):
        out = tmp_path / f"{src.stem}.safetensors"
        assert cli.main(["convert", str(src), "-o", str(out)]) == 0
        a, b = checkpoints.load(src), checkpoints.load(out)
        assert torch.equal(
            sampling.generate(a, 2, seed=1, sampler="ddim", steps=3),
            sampling.generate(b, 2, seed=1, sampler="ddim", steps=3),
        )


def test_contradicting_flags_exit_2_on_one_line(tmp_path):
    src = tmp_path / "model.pt"
    save_tiny_guided(src)
    cmd = [
        sys.executable,
        "-m",
        "dstab",
        "convert",
        str(src),
        "-o",
        str(tmp_path / "x.safetensors"),
        "--flag",
        "image_size=8",
        "--flag",
        "num_res_blocks=3",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "num_res_blocks=3 but the weights have 1" in done.stderr


@pytest.mark.parametrize(
    ("flag", "problem"),
    [
        ("image_size=abc", "flag image_size='abc' must be a positive integer"),
        ("diffusion_steps=0", "flag diffusion_steps=0 must be a positive integer"),
        ("dropout=2", "flag dropout=2 must be a number in [0, 1)"),
        ("learn_sigma=maybe", "flag learn_sigma='maybe' must be True or False"),
        ("attention_resolutions=a,b", "flag attention_resolutions='a,b' must list positive integers, e.g. 16,8"),
        ("num_head_channels=0", "flag num_head_channels=0 must be -1 or a positive integer"),
    ],
)
def test_a_bad_flag_value_is_named_as_a_flag_not_as_a_damaged_file(tmp_path, capsys, flag, problem):
    """Issue 27: `--flag image_size=abc` read "cannot be loaded (ZeroDivisionError ...); the file is damaged"."""
    src = tmp_path / "model.pt"
    save_tiny_guided(src)
    extra = [] if flag.startswith("image_size") else ["--flag", "image_size=8"]
    assert cli.main(["convert", str(src), "-o", str(tmp_path / "x.safetensors"), *extra, "--flag", flag]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {problem}; correct it where the flags come from") and err.count("\n") == 1
    assert "damaged" not in err and not (tmp_path / "x.safetensors").exists()
