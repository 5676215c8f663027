"""CIFAR-10 from python-pickle batches and folders of images, streamed from a uint8 cache."""

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from dstab import data
from dstab.errors import DstabError


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path / "cache"))


def write_cifar(folder, per_batch=4):
    """Batches in the real format: Python-2 era pickles of dicts with bytes keys, rows of
    1024 red, 1024 green, 1024 blue bytes. Image k of the train split has every byte k % 256."""
    folder.mkdir()
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        ks = [b * per_batch + i for i in range(per_batch)]
        rows = np.stack([np.full(3072, k % 256, np.uint8) for k in ks])
        rows[:, 1024:2048] = 7  # green plane: tells channel order apart
        batch = {
            b"batch_label": name.encode(),
            b"labels": [k % 10 for k in ks],
            b"data": rows,
            b"filenames": [f"img{k}.png".encode() for k in ks],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    return folder


def test_cifar10_batches_decode_in_order(tmp_path):
    ds = data.load(f"cifar10:{write_cifar(tmp_path / 'cifar-10-batches-py')}")
    assert len(ds) == 20 and ds.sample_shape == (3, 32, 32) and ds.image
    x = ds.data[torch.tensor([0, 13])]
    assert x.dtype == torch.float32 and x.shape == (2, 3, 32, 32)
    assert x[1, 0, 5, 5].item() == pytest.approx(13 / 127.5 - 1)  # red plane of image 13
    assert x[1, 1, 0, 0].item() == pytest.approx(7 / 127.5 - 1)  # green plane
    assert ds.meta["labels"][:6] == [0, 1, 2, 3, 4, 5]
    test = data.load(f"cifar10:{tmp_path}?split=test")  # the parent folder works too
    assert len(test) == 4 and test.data[0][0, 0, 0].item() == pytest.approx(20 / 127.5 - 1)


def test_cifar10_dataset_api_is_deterministic(tmp_path):
    spec = f"cifar10:{write_cifar(tmp_path / 'c')}"
    a, b = data.load(spec), data.load(spec)  # the second reads the cache
    assert torch.equal(a.fixed_batch(6, seed=3), b.fixed_batch(6, seed=3))
    batches = a.batches(8, seed=1)
    first = [next(batches) for _ in range(3)]
    resumed = next(a.batches(8, seed=1, start_step=2))
    assert torch.equal(first[2], resumed) and first[0].shape == (8, 3, 32, 32)
    assert sum(c.shape[0] for c in a.data.chunks(7)) == 20


def test_cifar10_missing_batch_is_named(tmp_path):
    folder = write_cifar(tmp_path / "c")
    (folder / "data_batch_3").unlink()
    with pytest.raises(DstabError, match=r"train batches missing: \['data_batch_3'\]"):
        data.load(f"cifar10:{folder}")


def test_cifar10_batch_with_code_is_refused(tmp_path):
    folder = write_cifar(tmp_path / "c")
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": Image.new("RGB", (1, 1))}, f)
    with pytest.raises(DstabError, match="not a CIFAR-10 python batch .*refused global"):
        data.load(f"cifar10:{folder}?split=test")


def make_image_folder(root):
    root.mkdir()
    (root / "sub").mkdir()
    Image.new("RGB", (40, 24), (255, 0, 0)).save(root / "a_red.png")
    Image.new("L", (16, 16), 128).save(root / "b_grey.jpg", quality=100)
    Image.new("RGBA", (10, 20), (0, 0, 255, 100)).save(root / "sub" / "c_blue.png")
    Image.new("P", (12, 12), 3).save(root / "d_palette.gif")
    (root / "e_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    full = root / "f_truncated.jpg"
    Image.effect_noise((64, 64), 40).convert("RGB").save(full, quality=90)
    full.write_bytes(full.read_bytes()[:300])
    (root / "notes.txt").write_text("not an image")
    return root


def test_folder_of_mixed_images(tmp_path):
    root = make_image_folder(tmp_path / "imgs")
    with pytest.warns(UserWarning, match="skipped 2 unreadable images"):
        ds = data.load(f"folder:{root}?size=8")
    assert len(ds) == 4 and ds.sample_shape == (3, 8, 8)
    assert sorted(s.split(":")[0] for s in ds.meta["skipped"]) == ["e_corrupt.png", "f_truncated.jpg"]
    x = ds.data[[0, 1, 3]]  # sorted by path: a, b, d (palette), sub/c
    # solid colours survive resizing and cropping exactly
    assert x[0, :, 4, 4].tolist() == pytest.approx([1.0, -1.0, -1.0])  # red RGB PNG
    assert x[1, :, 0, 7].tolist() == pytest.approx([128 / 127.5 - 1] * 3, abs=2 / 127.5)  # grey JPEG
    assert x[2, :, 3, 3].tolist() == pytest.approx([-1.0, -1.0, 1.0])  # RGBA: colour kept, alpha dropped
    with pytest.warns(UserWarning, match="skipped 2"):  # every load says so, cached or not
        grey = data.load(f"folder:{root}?size=8&channels=1")
    assert grey.sample_shape == (1, 8, 8)


def test_folder_errors(tmp_path):
    with pytest.raises(DstabError, match="no image folder"):
        data.load(f"folder:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DstabError, match="no images"):
        data.load(f"folder:{tmp_path / 'empty'}")
    with pytest.raises(DstabError, match="must be integers"):
        data.load(f"folder:{tmp_path}?size=big")


def test_trainer_streams_a_folder(tmp_path):
    from dstab import checkpoints
    from dstab.training.trainer import TrainConfig, train

    root = tmp_path / "imgs"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        Image.fromarray(rng.integers(0, 256, (12 + i, 10, 3), dtype=np.uint8)).save(root / f"{i}.png")
    spec = f"folder:{root}?size=8"
    arch = {"arch": "unet", "in_channels": 3, "image_size": 8, "model_channels": 32}
    result = train(TrainConfig(dataset=spec, arch=arch, steps=2, batch_size=4), tmp_path / "run", "cpu")
    assert np.isfinite(result["loss_last"])
    assert checkpoints.load(result["checkpoints"][2]).header["dataset"] == spec
