"""The API's results cache never returns another computation's number (issue 27).

Each case changes one thing the loss depends on that the weights, the batch and the loss function's
own bytecode do not show (the model's code, a submodule's class, a loss object's settings, a reloaded
helper module, a callable's attributes, a hook), and checks that the second call returns the true value
(the centre of a surface is the loss at the weights), not the stored one. Two controls: what the old
key saw already (other weights, another loss body) still gives a new result, and the same computation
again is read from the cache. What the key cannot see is computed, never stored, and the meta says why.
"""

from __future__ import annotations

import importlib
import random
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dstab
from dstab.errors import DstabError, DstabWarning

REPO = Path(__file__).resolve().parent.parent
X = torch.randn(24, 4, generator=torch.Generator().manual_seed(0))
Y = torch.randint(0, 3, (24,), generator=torch.Generator().manual_seed(1))


class TanhNet(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x)))


class ReluNet(TanhNet):  # the same weights (same seed, same layers): only forward's code differs
    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


def seq(act: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), act, nn.Linear(8, 3))


CRITERION = nn.CrossEntropyLoss()


def global_ce(model, batch):
    return CRITERION(model(batch[0]), batch[1])


def ce(model, batch):
    return F.cross_entropy(model(batch[0]), batch[1])


def true_loss(model, loss) -> float:
    with torch.no_grad():
        return float(loss(model.eval(), (X, Y)))


def centre(model, loss, **kw):
    surf = dstab.surface(dstab.probe(model, loss, (X, Y), **kw), grid=3, radius=0.1)
    return surf.centre_loss, surf.meta["cache"]


def assert_fresh(model, loss, stale: float):
    got, note = centre(model, loss)
    want = true_loss(model, loss)
    assert got == pytest.approx(want, rel=1e-6) and abs(want - stale) > 1e-4, (got, want, stale)
    assert note.startswith("stored: "), note  # computed and stored under its own key
    return got


def test_a_redefined_forward_is_a_new_result(caches):
    old, _ = centre(TanhNet(), ce)
    assert torch.equal(TanhNet().a.weight, ReluNet().a.weight)
    assert_fresh(ReluNet(), ce, old)


def test_a_submodule_of_another_class_is_a_new_result(caches):
    tanh, relu = seq(nn.Tanh()), seq(nn.ReLU())
    assert tanh.state_dict().keys() == relu.state_dict().keys()
    old, _ = centre(tanh, ce)
    assert_fresh(relu, ce, old)


def test_a_global_loss_objects_settings_are_in_the_key(caches, monkeypatch):
    model = TanhNet()
    old, _ = centre(model, global_ce)
    monkeypatch.setitem(globals(), "CRITERION", nn.CrossEntropyLoss(label_smoothing=0.4))
    assert_fresh(model, global_ce, old)
    CRITERION.label_smoothing = 0.0  # the same object changed in place
    assert centre(model, global_ce)[0] == pytest.approx(old, rel=1e-6)


def test_an_edited_and_reloaded_helper_module_is_a_new_result(caches, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    source = "import torch.nn.functional as F\n\n\ndef ce(out, y):\n    return {scale}F.cross_entropy(out, y)\n"
    (tmp_path / "mylosses.py").write_text(source.format(scale=""))
    mylosses = importlib.import_module("mylosses")
    monkeypatch.setitem(sys.modules, "mylosses", mylosses)

    def loss(model, batch):
        return mylosses.ce(model(batch[0]), batch[1])

    model = TanhNet()
    old, _ = centre(model, loss)
    (tmp_path / "mylosses.py").write_text(source.format(scale="2.0 * "))
    importlib.invalidate_caches()
    importlib.reload(mylosses)
    got = assert_fresh(model, loss, old)
    assert got == pytest.approx(2 * old, rel=1e-6)


def test_a_callable_objects_attributes_and_a_closure_are_in_the_key(caches):
    class Scaled:
        def __init__(self, scale):
            self.scale = scale

        def __call__(self, model, batch):
            return self.scale * F.cross_entropy(model(batch[0]), batch[1])

    model = TanhNet()
    loss = Scaled(1.0)
    old, _ = centre(model, loss)
    loss.scale = 3.0
    assert_fresh(model, loss, old)

    def closing(scale):
        return lambda model, batch: scale * F.cross_entropy(model(batch[0]), batch[1])

    old, _ = centre(model, closing(1.0))
    assert_fresh(model, closing(0.5), old)


def test_a_forward_hook_is_in_the_key(caches):
    model = TanhNet()
    old, _ = centre(model, ce)
    handle = model.b.register_forward_hook(lambda module, args, out: out * 2)
    try:
        assert_fresh(model, ce, old)
    finally:
        handle.remove()
    got, note = centre(model, ce)  # the hook removed: the first result again, from the cache
    assert got == old and note.startswith("read: ")


def test_controls_weights_and_loss_code_and_the_same_call(caches):
    model = TanhNet()
    old, note = centre(model, ce)
    assert note.startswith("stored: ")
    again, note = centre(TanhNet(), ce)  # another object, the same computation: read back
    assert again == old and note.startswith("read: ")
    other = TanhNet()
    with torch.no_grad():
        other.a.weight.add_(0.5)
    assert_fresh(other, ce, old)

    def ce_sum(model, batch):
        return F.cross_entropy(model(batch[0]), batch[1], reduction="sum")

    assert_fresh(model, ce_sum, old)


def test_what_the_key_cannot_see_is_computed_each_time_and_said(caches):
    gen = torch.Generator().manual_seed(0)  # C state the key cannot read

    def noisy(model, batch):
        return F.cross_entropy(model(batch[0]) + 0 * torch.rand(1, generator=gen), batch[1])

    model = TanhNet()
    p = dstab.probe(model, noisy, (X, Y))
    assert p.describe()["checkpoint_sha256"] is None
    surf = dstab.surface(p, grid=3, radius=0.1)
    assert surf.meta["cache"].startswith("off: ") and "'gen'" in surf.meta["cache"]
    assert "torch._C.Generator" in surf.meta["cache"]
    assert not (caches / "cache" / "surface").exists()  # nothing stored
    assert surf.centre_loss == pytest.approx(true_loss(model, noisy), rel=1e-6)


def torch_noise(model, batch):
    return F.cross_entropy(model(batch[0] + 0.1 * torch.randn_like(batch[0])), batch[1])


def numpy_noise(model, batch):
    return F.cross_entropy(model(batch[0]), batch[1]) * (1 + 0.1 * float(np.random.rand()))


def python_noise(model, batch):
    return F.cross_entropy(model(batch[0]), batch[1]) * (1 + 0.1 * random.random())


def reseeding(model, batch):  # random, but the same draw every call: a function of the weights
    torch.manual_seed(7)
    return F.cross_entropy(model(batch[0] + 0.1 * torch.randn_like(batch[0])), batch[1])


def seed_all(seed: int) -> None:
    torch.manual_seed(seed), np.random.seed(seed), random.seed(seed)


@pytest.mark.parametrize("loss", [torch_noise, numpy_noise, python_noise], ids=lambda f: f.__name__)
def test_a_loss_drawing_from_a_global_generator_is_never_stored(caches, loss):
    """The global generators' state is no part of the key: the first value would be returned for every
    later seed. Such a loss is found at dstab.probe (two calls, two values), said, and computed each time;
    the caller's generators are left as they were."""
    model = TanhNet()
    values = []
    for seed in (0, 1):
        seed_all(seed)
        before = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
        with pytest.warns(DstabWarning, match="draws from a global random generator") as seen:
            p = dstab.probe(model, loss, (X, Y))
        assert torch.equal(before[0], torch.get_rng_state()) and np.array_equal(before[1], np.random.get_state()[1])
        assert before[2] == random.getstate()
        two = [float(v) for v in re.findall(r"gave ([-\d.e]+) and ([-\d.e]+)\)", str(seen[0].message))[0]]
        assert two[0] != two[1] and all(abs(v - true_loss(model, ce)) < 0.5 for v in two)
        surf = dstab.surface(p, grid=3, radius=0.1)
        assert surf.meta["cache"].startswith("off: the loss draws from a global random generator"), surf.meta
        values.append(surf.centre_loss)
    assert values[0] != values[1]  # the second seed's own value, not the first one's
    assert not (caches / "cache" / "surface").exists()


def test_a_loss_that_seeds_its_own_noise_is_cached(caches, recwarn):
    model = TanhNet()
    got, note = centre(model, reseeding)
    assert note.startswith("stored: ") and got == pytest.approx(true_loss(model, reseeding), rel=1e-6)
    seed_all(3)
    again, note = centre(model, reseeding)
    assert again == got and note.startswith("read: ")
    assert not [w for w in recwarn if "random generator" in str(w.message)]


def gradient_penalty(model, batch):  # takes a gradient itself: the check must not run it without grad
    x = batch[0].clone().requires_grad_(True)
    out = model(x)
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return F.cross_entropy(out, batch[1]) + 0.1 * (g.norm() - 1) ** 2


def test_a_loss_that_takes_gradients_itself_can_be_probed(caches):
    """dstab.probe calls the loss once (the generator check) in the caller's grad mode: under no_grad a
    gradient penalty raised 'element 0 of tensors does not require grad' at dstab.probe."""
    model = TanhNet()
    p = dstab.probe(model, gradient_penalty, (X, Y))
    assert p.describe()["checkpoint_sha256"]  # keyed: no generator was touched
    assert float(p.loss()) == pytest.approx(float(gradient_penalty(model.eval(), (X, Y))), rel=1e-6)


@pytest.mark.filterwarnings("ignore::dstab.analysis.cost.CostWarning")
def test_the_cache_switch(caches):
    model = TanhNet()
    got, note = centre(model, ce, cache=False)
    assert note == "off: cache=False" and not (caches / "cache" / "surface").exists()
    surf = dstab.surface(dstab.probe(model, ce, (X, Y)), grid=3, radius=0.1, cache=False)
    assert surf.meta["cache"] == "off: cache=False" and not (caches / "cache" / "surface").exists()
    spec = dstab.hessian(dstab.probe(model, ce, (X, Y)), top_k=1, trace_samples=2, slq_runs=1, slq_steps=4)
    assert spec.meta["cache"].startswith("stored: ") and spec.loss == pytest.approx(got, rel=1e-6)
    with pytest.raises(DstabError, match="cache must be True or False"):
        dstab.probe(model, ce, (X, Y), cache="yes")


def test_the_key_is_the_same_in_another_process_whatever_the_hash_seed():
    code = textwrap.dedent(
        """
        import torch, dstab
        from torch import nn
        torch.manual_seed(0)
        m = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
        crit = nn.MSELoss(reduction="sum")
        def loss(model, b):
            mode = "sum"
            assert mode in {"sum", "mean", "none"}  # a frozenset constant: its repr order follows the hash seed
            return crit(model(b[0]), b[1])
        print(dstab.probe(m, loss, (torch.ones(3, 2), torch.zeros(3, 1))).describe()["checkpoint_sha256"])
        """
    )
    keys = set()
    for seed in ("1", "2"):
        env = {"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
        keys.add(
            subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
        )
    assert len(keys) == 1 and len(keys.pop().strip()) == 64
