"""Budgets and confinement: the limits' defaults and variables, sizes from configs on the meta device,
and which dataset specs a header may name."""

from __future__ import annotations

import json

import pytest

from dstab import budgets, confine, sizing
from dstab.errors import DstabError

GIB = 2**30


def test_memory_budget_defaults_to_half_the_ram_and_reads_the_variable(monkeypatch):
    monkeypatch.delenv("DSTAB_MAX_MEMORY_GB", raising=False)
    assert budgets.max_memory_bytes() == budgets.physical_memory_bytes() // 2
    monkeypatch.setenv("DSTAB_MAX_MEMORY_GB", "1.5")
    assert budgets.max_memory_bytes() == int(1.5 * GIB)
    budgets.check_memory(GIB, "a small thing")
    with pytest.raises(DstabError, match=r"^a big thing needs ~2 GiB, above the DSTAB_MAX_MEMORY_GB limit of 1.5 GiB"):
        budgets.check_memory(2 * GIB, "a big thing")
    monkeypatch.setenv("DSTAB_MAX_MEMORY_GB", "lots")
    with pytest.raises(DstabError, match="DSTAB_MAX_MEMORY_GB must be a number, got 'lots'"):
        budgets.max_memory_bytes()


def test_params_default_follows_memory_at_16_bytes_each(monkeypatch):
    monkeypatch.setenv("DSTAB_MAX_MEMORY_GB", "1")
    monkeypatch.delenv("DSTAB_MAX_PARAMS", raising=False)
    assert budgets.limit("DSTAB_MAX_PARAMS") == GIB // 16
    monkeypatch.setenv("DSTAB_MAX_PARAMS", "1000")
    with pytest.raises(DstabError, match="parameter count is 1,001, above the DSTAB_MAX_PARAMS limit of 1,000"):
        budgets.check_params(1001, "net")


@pytest.mark.parametrize("value", [1.5, "x", float("nan"), float("inf"), None])
def test_counts_must_be_whole_numbers(value):
    with pytest.raises(DstabError, match="must be a whole number"):
        budgets.check_count(value, "DSTAB_MAX_SAMPLES", "--num")


def test_parameter_count_from_the_config_matches_the_built_network():
    from dstab import models

    arch = {
        "arch": "unet",
        "image_size": 8,
        "in_channels": 1,
        "model_channels": 8,
        "norm_groups": 4,
        "channel_mult": [1, 2],
        "num_res_blocks": 1,
        "attention_resolutions": [4],
    }
    assert sizing.checked_params(arch, "unet") == models.count_parameters(models.build(arch))


def test_activation_bytes_scale_with_the_batch_and_count_every_output():
    # MLP denoiser 2 -> 16 -> 16 -> 2 with a time embedding of 8: Linear/SiLU outputs per example
    arch = {"arch": "mlp_denoiser", "data_dim": 2, "hidden": 16, "depth": 2, "time_dim": 8}
    one = sizing.activation_bytes(arch, [((2,), "float32"), ((), "int64")], 1)
    assert one > 0 and sizing.activation_bytes(arch, [((2,), "float32"), ((), "int64")], 64) == 64 * one


@pytest.mark.parametrize("spec", ["digits", "toy2d", "toy2d:checkerboard", "cifar10", "cifar10:?split=test"])
def test_built_in_datasets_pass(spec):
    assert confine.header_dataset(spec, "ckpt") == spec


def test_folders_pass_only_inside_the_allowed_roots(tmp_path, monkeypatch):
    monkeypatch.setenv("DSTAB_WORKSPACE", str(tmp_path / "ws"))
    inside = tmp_path / "ws" / "imgs"
    inside.mkdir(parents=True)
    assert confine.header_dataset(f"folder:{inside}?size=8", "ckpt") == f"folder:{inside}?size=8"
    for spec in ("folder:/etc?size=8", f"folder:{inside}/../../x", "cifar10:/root", "folder:", "folder:?size=8"):
        with pytest.raises(DstabError, match="was refused"):
            confine.header_dataset(spec, "ckpt")
    link = tmp_path / "ws" / "link"
    link.symlink_to("/etc")
    with pytest.raises(DstabError, match="outside the folders"):
        confine.header_dataset(f"folder:{link}", "ckpt")
    monkeypatch.setenv("DSTAB_ALLOWED_ROOTS", "/etc")
    assert confine.header_dataset("folder:/etc?size=8", "ckpt") == "folder:/etc?size=8"


@pytest.mark.parametrize("spec", [None, "", "imagenet", "http://x/y", 5])
def test_other_specs_are_refused_with_the_way_out(spec):
    with pytest.raises(DstabError, match="pick the dataset explicitly"):
        confine.header_dataset(spec, "ckpt")


def test_a_surface_runs_no_meta_forward_once_its_architecture_is_measured(ckpts, caches, monkeypatch):
    """The memory guard reads activation sizes from a per-architecture table in the user cache: the first
    process to meet an architecture measures it (one meta-device forward per network), every later one
    reads it (the meta forward's first call imports torch._dynamo: seconds, a third of a small surface)."""
    from dstab import cli

    calls = []
    measure = sizing._meta_forward_bytes
    monkeypatch.setattr(sizing, "_meta_forward_bytes", lambda *a: calls.append(a[0]) or measure(*a))
    argv = ["surface", str(ckpts["digits_gan"]), "--role", "g", "--grid", "3", "--out", str(caches / "out")]
    sizing._bytes_per_example.cache_clear()  # as a fresh process
    assert cli.main([*argv, "--threads", "1"]) == 0
    assert len(calls) == 2  # the generator's and the discriminator's architectures, measured once
    table = json.loads((caches / "cache" / "sizing" / "activations.json").read_text())
    assert len(table) == 2 and all(v > 0 for v in table.values())
    sizing._bytes_per_example.cache_clear()  # a second process
    assert cli.main([*argv, "--threads", "1", "--refresh"]) == 0
    assert len(calls) == 2  # no meta forward: both sizes came from the table
    # the table's sizes are the measured ones, and a changed architecture is measured anew
    arch = {"arch": "mlp_denoiser", "data_dim": 2, "hidden": 16, "depth": 2, "time_dim": 8}
    inputs = [((2,), "float32"), ((), "int64")]
    first = sizing.activation_bytes(arch, inputs, 1)
    assert len(calls) == 3 and first == measure(json.dumps(arch, sort_keys=True), (((2,), "float32"), ((), "int64")))
    sizing._bytes_per_example.cache_clear()
    assert sizing.activation_bytes(arch, inputs, 4) == 4 * first and len(calls) == 3
    sizing.activation_bytes({**arch, "hidden": 32}, inputs, 1)
    assert len(calls) == 4
