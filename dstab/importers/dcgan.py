"""pytorch/examples DCGAN checkpoints: `netG_epoch_N.pth` and `netD_epoch_N.pth`.

dcgan/main.py saves each network's state dict in its own file. dstab's
dcgan_g/dcgan_d have the same `main.N` layout, so the files load as they are;
nz, ngf, ndf, channels and the image size are read from the weight shapes.
Given `netG_epoch_N.pth`, the `netD_epoch_N.pth` beside it is paired with it;
given a folder, the highest epoch that has a netG (or the `epoch` hint). A
generator without its discriminator loads as a GAN bundle without D: it can
sample and be compared for consistency; analyses that need D refuse it.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ..bundle import Bundle, make_header
from ..confine import like
from ..errors import DstabError
from ..fileio import file_sha256
from .state_dicts import Layout, has_keys, module_from_state, read_state_dict

G_SIGNATURE = ("main.0.weight", "main.1.running_mean")
D_SIGNATURE = ("main.0.weight", "main.2.weight")
NAME = re.compile(r"net([GD])_epoch_(\d+)\.pth")


def _conv_weights(state: dict) -> list:
    """The 4-D weights of `main`, in layer order."""
    keys = [k for k in state if re.fullmatch(r"main\.\d+\.weight", k) and state[k].dim() == 4]
    return [state[k] for k in sorted(keys, key=lambda k: int(k.split(".")[1]))]


def generator_arch(state: dict) -> dict:
    convs = _conv_weights(state)
    # ConvTranspose2d weights are (in, out, 4, 4): nz -> ngf * 2**(k-1) -> ... -> ngf -> channels
    return {
        "arch": "dcgan_g",
        "image_size": 4 * 2 ** (len(convs) - 1),
        "channels": convs[-1].shape[1],
        "nz": convs[0].shape[0],
        "ngf": convs[-1].shape[0],
        "ndf": 64,  # unused by the generator; pytorch/examples' default
    }


def discriminator_arch(state: dict) -> dict:
    convs = _conv_weights(state)
    # Conv2d weights are (out, in, 4, 4): channels -> ndf -> ... -> ndf * 2**(k-1) -> 1
    return {
        "arch": "dcgan_d",
        "image_size": 4 * 2 ** (len(convs) - 1),
        "channels": convs[0].shape[1],
        "nz": 100,  # unused by the discriminator; pytorch/examples' default
        "ngf": 64,
        "ndf": convs[0].shape[0],
    }


def _is_generator(state: dict) -> bool:
    return all(k in state for k in G_SIGNATURE)


def _pair(path: Path, epoch: int | None) -> tuple[Path, Path | None]:
    """(netG file, netD file or None) for a file or a folder."""
    if path.is_dir():
        found = {int(m.group(2)): p for p in path.iterdir() if (m := NAME.fullmatch(p.name)) and m.group(1) == "G"}
        if not found:
            raise DstabError(f"{path}: no netG_epoch_N.pth in this folder")
        if epoch is not None and int(epoch) not in found:
            raise DstabError(f"{path}: no netG_epoch_{epoch}.pth; epochs present: {sorted(found)}")
        g_path = found[int(epoch) if epoch is not None else max(found)]
    else:
        g_path = path
        if not _is_generator(read_state_dict(path)):
            raise DstabError(f"{path} is a DCGAN discriminator; load the generator (netG_epoch_N.pth) beside it")
    m = NAME.fullmatch(g_path.name)
    d_path = g_path.with_name(f"netD_epoch_{m.group(2)}.pth") if m else None
    # files found beside the one named are confined like it (a symlink may not lead out of the allowed roots)
    return like(path, g_path), like(path, d_path) if d_path and d_path.is_file() else None


def detect(path: Path) -> bool:
    if path.is_dir():
        return any(NAME.fullmatch(p.name) for p in path.iterdir())
    return has_keys(path, G_SIGNATURE) or has_keys(path, D_SIGNATURE)


def load(path: Path, epoch: int | None = None, dataset: str | None = None, **_hints) -> Bundle:
    g_path, d_path = _pair(Path(path), epoch)
    g_state = read_state_dict(g_path)
    arches = {"generator": generator_arch(g_state)}
    modules = {"generator": module_from_state(arches["generator"], g_state, g_path)}
    if d_path is not None:
        d_state = read_state_dict(d_path)
        arches["discriminator"] = discriminator_arch(d_state)
        if arches["discriminator"]["image_size"] != arches["generator"]["image_size"]:
            raise DstabError(f"{d_path} is for {arches['discriminator']['image_size']}px images, {g_path} makes others")
        modules["discriminator"] = module_from_state(arches["discriminator"], d_state, d_path)
    m = NAME.fullmatch(g_path.name)
    header = make_header(
        "gan",
        arches,
        dataset=dataset or "unknown",
        step=int(m.group(2)) if m else 0,  # the epoch: main.py saves once per epoch
        seed=-1,  # main.py draws a random manualSeed unless given; not saved
        name=g_path.parent.name + "/" + g_path.stem,
        imported_from={
            "format": "pytorch/examples dcgan",
            "generator": g_path.name,
            "discriminator": d_path.name if d_path else None,
            "step_unit": "epoch",
        },
    )
    bundle = Bundle(header=header, modules=modules, path=g_path)
    # both files identify the GAN (cache keys): hash of their hashes
    hashes = [file_sha256(p) for p in (g_path, d_path) if p is not None]
    bundle.sha256 = hashlib.sha256("/".join(hashes).encode()).hexdigest()
    return bundle


LAYOUT = Layout(
    "pytorch/examples DCGAN",
    G_SIGNATURE,
    r"main\.\d+\.(weight|bias|running_mean|running_var|num_batches_tracked)$",
    r"\d+\.(weight|bias|running_mean|running_var|num_batches_tracked)$",
    "Save netG/netD state dicts as dcgan/main.py does.",
)
