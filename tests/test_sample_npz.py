"""`dstab sample --npz`: the raw arrays with their seed and sampler settings; GAN BatchNorm modes."""

import copy
import json

import numpy as np
import pytest
import torch

from dstab import checkpoints, sampling
from dstab.cli import main
from dstab.diffusion import NoiseSource
from tests.conftest import assert_unchanged, module_state


def test_npz_holds_the_samples_and_what_drew_them(ckpts, tmp_path, capsys):
    out = tmp_path / "s.npz"
    argv = ["sample", str(ckpts["digits_dm"]), "--npz", str(out), "-n", "3", "--seed", "5", "--sampler", "ddim"]
    assert main([*argv, "--steps", "4", "--device", "cpu"]) == 0
    assert capsys.readouterr().out.strip() == str(out)  # no PNG asked for, none written
    with np.load(out) as z:
        arrays = {k: z[k] for k in z.files}
    bundle = checkpoints.load(ckpts["digits_dm"])
    expected = sampling.generate(bundle, 3, 5, "ddim", 4).numpy()
    np.testing.assert_array_equal(arrays["samples"], expected)
    assert arrays["samples"].dtype == np.float32 and arrays["samples"].shape == (3, 1, 8, 8)
    assert int(arrays["seed"]) == 5 and str(arrays["sampler"]) == "ddim" and int(arrays["steps"]) == 4
    meta = json.loads(str(arrays["meta"]))
    assert meta["sha256"] == bundle.sha256 and meta["diffusion"]["T"] == 1000 and meta["eta"] == 0.0
    assert meta["clip_x0"] == "[-1, 1]" and meta["variance"].startswith("fixed small")


def test_png_and_npz_together(ckpts, tmp_path):
    png, npz = tmp_path / "g.png", tmp_path / "g.npz"
    assert main(["sample", str(ckpts["toy_gan"]), "-o", str(png), "--npz", str(npz), "-n", "4"]) == 0
    assert png.stat().st_size > 0
    with np.load(npz) as z:
        assert z["samples"].shape == (4, 2) and str(z["batchnorm"]) == "eval" and "sampler" not in z.files


@pytest.mark.parametrize("argv, message", [([], "nothing to write"), (["--npz", "x.txt"], "must name a .npz")])
def test_sample_output_errors(ckpts, capsys, argv, message):
    assert main(["sample", str(ckpts["toy_gan"]), *argv]) == 2
    assert message in capsys.readouterr().err


def test_dcgan_batch_statistics_as_pytorch_examples_draws_them(ckpts):
    bundle = checkpoints.load(ckpts["digits_gan"])
    before = module_state(bundle.generator)
    batch = sampling.generate(bundle, 6, seed=2, batchnorm="batch")
    # dcgan/main.py: netG stays in train mode, fake = netG(fixed_noise)
    net = copy.deepcopy(bundle.generator).train()
    z = NoiseSource(2, (6, *sampling.sample_shape(bundle))).latent(net.latent_shape)
    with torch.no_grad():
        assert torch.allclose(batch, net(z), atol=1e-6)
    evaluated = sampling.generate(bundle, 6, seed=2)
    assert (batch - evaluated).abs().max() > 1e-2  # the two modes really differ
    assert_unchanged(bundle.generator, before)  # running statistics and eval mode kept


def test_npz_records_the_batchnorm_mode(ckpts, tmp_path):
    out = tmp_path / "b.npz"
    assert main(["sample", str(ckpts["digits_gan"]), "--npz", str(out), "-n", "5", "--batchnorm", "batch"]) == 0
    with np.load(out) as z:
        assert str(z["batchnorm"]) == "batch"
        expected = sampling.generate(checkpoints.load(ckpts["digits_gan"]), 5, seed=0, batchnorm="batch")
        np.testing.assert_allclose(z["samples"], expected.numpy(), atol=1e-6)
