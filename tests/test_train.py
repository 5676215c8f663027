import pytest
import torch

from dstab import checkpoints
from dstab.errors import DstabError
from dstab.training.trainer import EMA, TrainConfig, train
from tests.conftest import TINY_UNET


def _dm_config(**over):
    base = dict(
        kind="dm",
        dataset="digits",
        arch=TINY_UNET,
        diffusion={"schedule": "linear", "T": 100, "prediction": "eps"},
        steps=40,
        batch_size=32,
        lr=2e-3,
    )
    return TrainConfig(**{**base, **over})


def test_a_tiny_dm_train_reduces_the_loss_and_saves(tmp_path):
    rows = []
    result = train(_dm_config(save_steps=[4], log_every=10), tmp_path, log=rows.append)
    assert result["loss_last"] < 0.6 * result["loss_first"]
    assert sorted(result["checkpoints"]) == [4, 40]
    assert [r["step"] for r in rows] == [10, 20, 30, 40]
    b = checkpoints.load(result["checkpoints"][40])
    assert b.header["step"] == 40 and b.header["ema"] is True
    assert b.header["train_config"]["steps"] == 40


def test_training_is_deterministic_given_seeds(tmp_path):
    a = train(_dm_config(steps=6), tmp_path / "a")
    b = train(_dm_config(steps=6), tmp_path / "b")
    c = train(_dm_config(steps=6, seed=1), tmp_path / "c")
    wa, wb, wc = (checkpoints.load(r["checkpoints"][6]).model.state_dict() for r in (a, b, c))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_a_tiny_gan_trains(tmp_path):
    arch = {"generator": {"arch": "mlp_g", "hidden": 32}, "discriminator": {"arch": "mlp_d", "hidden": 32}}
    cfg = TrainConfig(kind="gan", dataset="toy2d", arch=arch, steps=30, batch_size=64, beta1=0.5, ema_rate=None)
    result = train(cfg, tmp_path)
    b = checkpoints.load(result["checkpoints"][30])
    assert b.kind == "gan" and b.header["gan"]["latent_shape"] == [2]


def test_ema_warmup_follows_its_formula():
    m = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(m.weight)
    ema = EMA(m, rate=0.999)
    with torch.no_grad():
        m.weight.fill_(1.0)
    ema.update(m)  # rate min(0.999, 1/10) = 0.1 -> 0.9 of the new weight
    assert ema.module.weight.item() == pytest.approx(0.9)
    ema.update(m)  # rate 2/11
    assert ema.module.weight.item() == pytest.approx(1 - 0.1 * 2 / 11)


@pytest.mark.parametrize(
    "over,message",
    [
        ({"dataset": "imagenet"}, "unknown dataset 'imagenet'"),
        ({"steps": -5}, "steps must be a positive integer"),
        ({"lr": 0}, "lr must be > 0"),
        ({"arch": {**TINY_UNET, "arch": "resnet"}}, "unknown architecture 'resnet'"),
        ({"diffusion": {"schedule": "linear", "T": 0, "prediction": "eps"}}, "T must be an integer >= 1"),
        ({"arch": {**TINY_UNET, "image_size": 16}}, r"expects samples of shape \(1, 16, 16\)"),
    ],
)
def test_bad_configs_fail_before_training(tmp_path, over, message):
    with pytest.raises(DstabError, match=message):
        train(_dm_config(**over), tmp_path)
    assert not list(tmp_path.iterdir())


def test_unknown_option_in_a_config_dict():
    with pytest.raises(DstabError, match=r"unknown training options \['epochs'\]"):
        TrainConfig.from_dict({"epochs": 3})


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("1e4", 10000),  # an integer in exponent form is the integer a user means
        ("2E+3", 2000),
        ("1e-3", 1e-3),  # a fraction stays a float
        ("2.5e3", 2500.0),  # written with a point: the float it says
        ("1e400", float("inf")),  # JSON's own reading: refused later as not a whole number
        ("500", 500),
        (" uniform ", "uniform"),  # not JSON: the string, stripped
        ('{"name": "clts"}', {"name": "clts"}),
    ],
)
def test_option_values_are_read_as_typed(raw, value):
    from dstab.training.config import parse_override, parse_value

    got = parse_value(raw)
    assert got == value and type(got) is type(value)
    assert parse_override(f"timesteps.target_iter={raw}") == (["timesteps", "target_iter"], value)
