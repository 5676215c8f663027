"""Images decode to their real range: 16-bit scaled by 255/65535 (not clipped), floats from [0, 1],
other ranges refused and counted like unreadable files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dstab import data
from dstab.image_data import eight_bit


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path / "cache"))


def _pixels(ds) -> np.ndarray:
    return np.rint((ds.data[:].numpy() + 1.0) * 127.5)


def test_a_16_bit_png_round_trip_scales_32768_to_128(tmp_path, cache):
    folder = tmp_path / "imgs"
    folder.mkdir()
    values = np.array([[0, 257, 32768, 65535]] * 4, dtype=np.uint16)
    Image.fromarray(values).save(folder / "deep.png")
    assert Image.open(folder / "deep.png").mode == "I;16"
    ds = data.load(f"folder:{folder}?size=4&channels=1")
    # 16-bit v -> round(v * 255 / 65535): 0, 1, 128 (32768 * 255 / 65535 = 127.5019), 255; no resampling at size 4
    assert _pixels(ds)[0, 0, 0].tolist() == [0, 1, 128, 255]


def test_a_16_bit_png_keeps_its_colour_channels(tmp_path, cache):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.full((4, 4), 32768, dtype=np.uint16)).save(folder / "grey16.png")
    ds = data.load(f"folder:{folder}?size=4&channels=3")
    assert ds.sample_shape == (3, 4, 4) and set(_pixels(ds).ravel().tolist()) == {128.0}


@pytest.mark.parametrize(("value", "expected"), [(0.0, 0), (0.5, 128), (1.0, 255)])
def test_float_images_in_0_1_are_scaled(value, expected):
    img = eight_bit(Image.fromarray(np.full((2, 2), value, dtype=np.float32)))
    assert img.mode == "L" and np.asarray(img).tolist() == [[expected] * 2] * 2


def test_a_float_tiff_outside_0_1_is_skipped_and_counted_not_truncated(tmp_path, cache):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.full((4, 4), 3.5, dtype=np.float32)).save(folder / "hdr.tiff")
    Image.fromarray(np.full((4, 4), 0.25, dtype=np.float32)).save(folder / "ok.tiff")
    with pytest.warns(UserWarning, match="skipped 1 unreadable images"):
        ds = data.load(f"folder:{folder}?size=4&channels=1")
    assert len(ds) == 1 and set(_pixels(ds).ravel().tolist()) == {64.0}  # 0.25 * 255 = 63.75
    assert ds.meta["skipped"] == ["hdr.tiff: ValueError: float image with values in [3.5, 3.5], not [0, 1]"]


def test_8_bit_images_are_unchanged(tmp_path, cache):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.array([[0, 1, 128, 255]] * 4, dtype=np.uint8)).save(folder / "plain.png")
    assert _pixels(data.load(f"folder:{folder}?size=4&channels=1"))[0, 0, 0].tolist() == [0, 1, 128, 255]
