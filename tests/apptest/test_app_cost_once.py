"""A page on a cache miss builds each probe once and times its loss once, for the estimate and the
computation together (dstab.analysis.results.Plan keeps both)."""

from dstab import probes
from dstab.analysis import cost, landscape


def test_landscape_cache_miss_builds_each_probe_once_and_times_each_loss_once(app, monkeypatch, tmp_path):
    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path / "fresh-cache"))  # a miss for both models
    cost.forget()
    built, timed = [], []
    for name in ("dm_probe", "gan_probe"):
        original = getattr(probes, name)
        monkeypatch.setattr(probes, name, lambda *a, _f=original, _n=name, **k: built.append(_n) or _f(*a, **k))
    real = cost.seconds_per_call

    def counting(fn, key=None, *args, **kwargs):
        if key is None or key not in cost._TIMINGS:
            timed.append(key)
        return real(fn, key, *args, **kwargs)

    monkeypatch.setattr(cost, "seconds_per_call", counting)
    monkeypatch.setattr(landscape, "seconds_per_call", counting)
    at = app("pages/landscape.py", data="toy2d", grid="5", dseed="3")
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 2  # both surfaces were computed and their contour maps drawn
    assert sorted(built) == ["dm_probe", "gan_probe"]
    assert len(timed) == 2 and all(k is not None for k in timed)  # the page's estimates; the engines reused them


def test_hessian_hit_builds_no_probe(app, monkeypatch, tmp_path):
    # bench_app on the real zoo: the Hessian page took 2.3 s on a cache hit, building both probes only to
    # spell the exact key (a DM's first build imports torch._dynamo); a stored result is found without them
    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path / "fresh-cache"))
    first = app("pages/hessian.py", data="toy2d", k="1", trace="2", slq="1")  # a miss: computed and stored
    assert not first.exception, first.exception
    numbers = first.table[0].value
    built = []
    for name in ("dm_probe", "gan_probe"):
        original = getattr(probes, name)
        monkeypatch.setattr(probes, name, lambda *a, _f=original, _n=name, **k: built.append(_n) or _f(*a, **k))
    at = app("pages/hessian.py", data="toy2d", k="1", trace="2", slq="1")
    assert not at.exception, at.exception
    assert built == []
    assert at.table[0].value.equals(numbers)
    assert not [c.value for c in at.caption if "not in the cache" in c.value]
