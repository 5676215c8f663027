"""Custom architectures: registered in code, through DSTAB_PLUGINS files or entry points; confined."""

from importlib.metadata import EntryPoint

import pytest
import torch

from dstab import checkpoints, models, plugins, sampling
from dstab.diffusion import Diffusion
from dstab.errors import DstabError
from dstab.models.unet import UNet
from tests.conftest import TINY_UNET

PLUGIN = """
import torch
from torch import nn
import dstab


class TinyDenoiser(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.lin = nn.Linear(config["sample_shape"][0] + 1, config["sample_shape"][0])

    def forward(self, x, t):
        return self.lin(torch.cat([x, t.float()[:, None] / 1000], dim=1))


dstab.register_architecture("tiny_plugin_net", TinyDenoiser)
"""
CONFIG = {"arch": "tiny_plugin_net", "sample_shape": [2]}


@pytest.fixture
def fresh(monkeypatch):
    """An architecture table without the plugin, and plugins not yet loaded."""
    monkeypatch.setattr(models, "ARCHITECTURES", dict(models.ARCHITECTURES))
    monkeypatch.setattr(plugins, "_loaded", False)
    monkeypatch.setattr(plugins, "_entry_points", lambda: [])


def write_plugin(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tinynet.py").write_text(PLUGIN)
    return folder / "tinynet.py"


def test_a_plugin_file_in_the_allowed_roots_opens_its_checkpoints(tmp_path, monkeypatch, fresh):
    plugin = write_plugin(tmp_path / "plugins")
    monkeypatch.setenv("DSTAB_ALLOWED_ROOTS", str(tmp_path / "plugins"))
    monkeypatch.setenv("DSTAB_PLUGINS", str(plugin))
    model = models.build(CONFIG)  # first unknown name: the plugins load
    header = checkpoints.make_header("dm", CONFIG, "toy2d", 0, 0, diffusion=Diffusion("cosine", 10).to_config())
    checkpoints.save(tmp_path / "mine.safetensors", header, {"model": model})
    monkeypatch.setattr(models, "ARCHITECTURES", {k: v for k, v in models.ARCHITECTURES.items() if k != CONFIG["arch"]})
    monkeypatch.setattr(plugins, "_loaded", False)  # as in a fresh process, e.g. the dashboard's
    bundle = checkpoints.load(tmp_path / "mine.safetensors")
    assert torch.equal(bundle.model.lin.weight, model.lin.weight)
    assert sampling.generate(bundle, 3, seed=0).shape == (3, 2)


def test_a_plugin_file_outside_the_allowed_roots_is_refused(tmp_path, monkeypatch, fresh):
    monkeypatch.setenv("DSTAB_ALLOWED_ROOTS", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("DSTAB_PLUGINS", str(write_plugin(tmp_path / "plugins")))
    with pytest.raises(DstabError, match="outside the folders this server may read"):
        models.build(CONFIG)


def test_an_entry_point_registers_its_class(tmp_path, monkeypatch, fresh):
    write_plugin(tmp_path / "pkg")
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    monkeypatch.delenv("DSTAB_PLUGINS", raising=False)
    ep = EntryPoint(name="tiny_ep_net", value="tinynet:TinyDenoiser", group=plugins.GROUP)
    monkeypatch.setattr(plugins, "_entry_points", lambda: [ep])
    net = models.build({"arch": "tiny_ep_net", "sample_shape": [3]})
    assert net.lin.weight.shape == (3, 4)


def test_unknown_names_still_say_how_to_register(fresh, monkeypatch):
    monkeypatch.delenv("DSTAB_PLUGINS", raising=False)
    with pytest.raises(DstabError, match="unknown architecture 'nope'.*register yours"):
        models.build({"arch": "nope"})
    with pytest.raises(DstabError, match="not a torch.nn.Module subclass"):
        models.register_architecture("bad", dict)


def test_no_plugin_replaces_a_built_in_architecture(tmp_path, monkeypatch, fresh):
    """Issue 27: an entry point named `unet`, loaded when a visitor's checkpoint names an unknown
    architecture, replaced dstab's UNet for the rest of the server's life."""
    write_plugin(tmp_path / "pkg")
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    monkeypatch.delenv("DSTAB_PLUGINS", raising=False)
    eps = [
        EntryPoint(name="unet", value="tinynet:TinyDenoiser", group=plugins.GROUP),
        EntryPoint(name="tiny_ep_net", value="tinynet:TinyDenoiser", group=plugins.GROUP),
    ]
    monkeypatch.setattr(plugins, "_entry_points", lambda: eps)
    unet = models.ARCHITECTURES["unet"]
    with pytest.warns(plugins.PluginWarning, match="entry point unet = tinynet:TinyDenoiser .* skipped: .*dstab's own"):
        net = models.build({"arch": "tiny_ep_net", "sample_shape": [3]})  # an unknown name: plugins load
    assert net.lin.weight.shape == (3, 4)  # the package's other plugin still registered
    assert models.ARCHITECTURES["unet"] is unet and isinstance(models.build(TINY_UNET), UNet)
    with pytest.raises(DstabError, match="'mlp_g' is one of dstab's own"):
        models.register_architecture("mlp_g", torch.nn.Linear)
    # a DSTAB_PLUGINS file that tries is refused, naming the name
    plugin = tmp_path / "plugins" / "evil.py"
    plugin.parent.mkdir()
    plugin.write_text(PLUGIN.replace('"tiny_plugin_net"', '"unet"'))
    monkeypatch.setenv("DSTAB_ALLOWED_ROOTS", str(plugin.parent))
    monkeypatch.setenv("DSTAB_PLUGINS", str(plugin))
    monkeypatch.setattr(plugins, "_loaded", False)
    monkeypatch.setattr(plugins, "_entry_points", lambda: [])
    with pytest.raises(DstabError, match="'unet' is one of dstab's own"):
        models.build({"arch": "another_unknown"})
    assert models.ARCHITECTURES["unet"] is unet
