"""pytorch/examples DCGAN netG/netD files through checkpoints.load.

Golden outputs were produced once by dcgan/main.py's own Generator and
Discriminator (nz 16, ngf = ndf = 8, nc 3, 64 px) with every tensor filled by
`fill_deterministic`, which depends only on key names and shapes.
"""

import pytest
import torch

from dstab import checkpoints, models, sampling
from dstab.errors import DstabError
from tests.conftest import fill_deterministic


def save_pair(folder, epoch, nz=16, ngf=8, ndf=8, with_d=True):
    """What dcgan/main.py writes at the end of an epoch: two state dicts."""
    g = fill_deterministic(models.build({"arch": "dcgan_g", "image_size": 64, "channels": 3, "nz": nz, "ngf": ngf}))
    torch.save(g.state_dict(), folder / f"netG_epoch_{epoch}.pth")
    if with_d:
        d = fill_deterministic(models.build({"arch": "dcgan_d", "image_size": 64, "channels": 3, "ndf": ndf}))
        torch.save(d.state_dict(), folder / f"netD_epoch_{epoch}.pth")


def test_pair_loads_and_matches_reference_network(tmp_path):
    save_pair(tmp_path, 24)
    bundle = checkpoints.load(tmp_path / "netG_epoch_24.pth")
    assert bundle.kind == "gan" and bundle.header["step"] == 24
    g_arch, d_arch = bundle.header["arch"]["generator"], bundle.header["arch"]["discriminator"]
    assert (g_arch["nz"], g_arch["ngf"], g_arch["channels"], g_arch["image_size"]) == (16, 8, 3, 64)
    assert (d_arch["ndf"], d_arch["channels"]) == (8, 3)
    assert len(bundle.generator.state_dict()) == 25 and len(bundle.discriminator.state_dict()) == 20
    z = torch.randn(2, 16, 1, 1, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        img = bundle.generator(z)
        logits = bundle.discriminator(img)
    assert img.sum().item() == pytest.approx(-300.749267578125, abs=1e-3)
    assert img.abs().sum().item() == pytest.approx(1792.9959716796875, abs=1e-2)
    # main.py's D ends in a Sigmoid; dstab's returns the logits before it
    assert torch.sigmoid(logits).tolist() == pytest.approx([0.5293689966201782, 0.5295191407203674], abs=1e-6)


def test_folder_picks_the_latest_epoch_or_the_asked_one(tmp_path):
    save_pair(tmp_path, 3, nz=8)
    save_pair(tmp_path, 12, nz=16)
    assert checkpoints.load(tmp_path).header["step"] == 12
    assert checkpoints.load(tmp_path, epoch=3).header["arch"]["generator"]["nz"] == 8
    with pytest.raises(DstabError, match=r"no netG_epoch_5.pth; epochs present: \[3, 12\]"):
        checkpoints.load(tmp_path, epoch=5)


def test_published_size_parameter_counts(tmp_path):
    # dcgan/main.py defaults nz 100, ngf 64, ndf 64, nc 3: 3,576,704 and 2,765,568 parameters
    save_pair(tmp_path, 0, nz=100, ngf=64, ndf=64)
    bundle = checkpoints.load(tmp_path / "netG_epoch_0.pth")
    assert models.count_parameters(bundle.generator) == 3_576_704
    assert models.count_parameters(bundle.discriminator) == 2_765_568


def test_generator_alone_samples_and_converts(tmp_path):
    save_pair(tmp_path, 7, with_d=False)
    bundle = checkpoints.load(tmp_path / "netG_epoch_7.pth")
    assert set(bundle.modules) == {"generator"}
    assert sampling.generate(bundle, 3, seed=0).shape == (3, 3, 64, 64)
    with pytest.raises(DstabError, match="has no discriminator"):
        _ = bundle.discriminator
    out = tmp_path / "g.safetensors"
    checkpoints.save(out, bundle.header, bundle.modules)
    again = checkpoints.load(out)
    assert set(again.modules) == {"generator"}
    assert torch.equal(sampling.generate(again, 2, seed=5), sampling.generate(bundle, 2, seed=5))


def test_discriminator_file_alone_is_explained(tmp_path):
    save_pair(tmp_path, 1)
    with pytest.raises(DstabError, match="is a DCGAN discriminator; load the generator"):
        checkpoints.load(tmp_path / "netD_epoch_1.pth")


def test_unknown_layer_names_point_to_dcgan(tmp_path):
    save_pair(tmp_path, 1, with_d=False)
    state = torch.load(tmp_path / "netG_epoch_1.pth", weights_only=True)
    torch.save({k.replace("main.", "net."): v for k, v in state.items()}, tmp_path / "gen.pth")
    with pytest.raises(DstabError, match=r"closest is pytorch/examples DCGAN.*missing \['main.0.weight'"):
        checkpoints.load(tmp_path / "gen.pth")
