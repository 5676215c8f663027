"""The one verdict function: all seeds of a group, collapsed models excluded and named, exact numbers."""

import pytest

from dstab import report, verdicts, zoo, zooindex, zooresults
from dstab.verdicts import FAILS, HOLDS, NA, WEAK, Value, compare


def _vals(prefix, xs, collapsed=()):
    return [Value(f"toy2d/{prefix}-s{i}", x, i in collapsed) for i, x in enumerate(xs)]


def test_every_seed_agrees_holds_with_mean_and_sample_sd():
    v = compare("DM lambda_1 below GAN's", _vals("dm", [1.0, 2.0, 3.0]), _vals("gan", [5.0, 6.0, 7.0]), True)
    assert v.verdict == HOLDS and v.excluded == () and v.verdict_all is None
    assert (v.a.mean, v.a.sd, v.a.n) == (2.0, 1.0, 3) and (v.b.mean, v.b.sd) == (6.0, 1.0)
    assert [s[2] for s in v.per_seed] == [HOLDS] * 3
    assert v.text() == (
        "DM lambda_1 below GAN's: holds (DM 2 +- 1 (n = 3) vs GAN 6 +- 1 (n = 3); "
        "per seed: dm-s0 vs gan-s0 holds, dm-s1 vs gan-s1 holds, dm-s2 vs gan-s2 holds)"
    )


def test_reversed_claim_does_not_hold_and_mixed_seeds_are_a_weak_test():
    v = compare("c", _vals("dm", [5.0, 6.0]), _vals("gan", [1.0, 2.0]), True)
    assert v.verdict == FAILS and "**does not hold**" in v.text()
    mixed = compare("c", _vals("dm", [1.0, 9.0, 2.0]), _vals("gan", [5.0, 6.0, 7.0]), True)
    assert mixed.verdict == WEAK and "seeds disagree (2 of 3 agree with the claim)" in mixed.caveats


def test_a_collapsed_gan_is_excluded_named_and_the_verdict_with_it_given():
    """The zoo's toy2d case: gan-s0 collapsed to one wedge has a tiny lambda_1; without it the claim holds."""
    dm = _vals("dm-eps", [169.0, 121.5, 137.4])
    gan = _vals("gan", [4.04, 132.2, 208.0], collapsed={0})
    v = compare("toy2d: DM lambda_1 below GAN's (gan-g)", dm, gan, True)
    assert v.excluded == ("toy2d/gan-s0",)
    assert v.verdict == HOLDS and v.b.ids == ("toy2d/gan-s1", "toy2d/gan-s2") and v.b.mean == pytest.approx(170.1)
    assert v.per_seed[0] == ("toy2d/dm-eps-s0", "toy2d/gan-s0", "excluded")
    assert v.verdict_all == WEAK and v.b_all.n == 3 and v.b_all.mean == pytest.approx((4.04 + 132.2 + 208.0) / 3)
    assert "excluded as collapsed: toy2d/gan-s0; with them included: weak test" in v.text()


def test_nothing_left_and_single_models_and_stand_ins():
    all_gone = compare("c", _vals("dm", [1.0, 2.0]), _vals("gan", [5.0, 6.0], collapsed={0, 1}), True)
    assert all_gone.verdict == NA and all_gone.b.mean is None and all_gone.verdict_all == HOLDS
    single = compare("c", _vals("dm", [1.0]), _vals("gan", [5.0]), True)
    assert single.verdict == WEAK and "fewer than 2 models in a group" in single.caveats
    stand_in = compare("c", _vals("dm", [1.0, 2.0]), _vals("gan", [5.0, 6.0]), True, stand_in="a pair only")
    assert stand_in.verdict == WEAK and stand_in.caveats == ("a pair only",)


def test_consistency_group_rescored_without_its_collapsed_reference():
    """Group values are PSNR of models 2..N vs model 1 (Eq. 1); with model 1 collapsed the reference
    becomes the first healthy model, so C over {s1, s2} is matrix[1][2]."""
    m = [[100.0, 8.0, 9.0], [8.0, 100.0, 12.0], [9.0, 12.0, 100.0]]
    every, kept = verdicts.group_psnr_values(["g0", "g1", "g2"], m, {"g0"})
    assert [x.value for x in every] == [8.0, 9.0] and [(x.id, x.value) for x in kept] == [("g2", 12.0)]
    dm = {"ids": ["d0", "d1", "d2"], "matrix": [[100.0, 20.0, 22.0], [20.0, 100.0, 21.0], [22.0, 21.0, 100.0]]}
    gan = {"ids": ["g0", "g1", "g2"], "matrix": m}
    v = verdicts.consistency_verdict("DMs more consistent", dm, gan, {"g0"})
    assert v.a.mean == 21.0 and v.b.mean == 12.0 and v.excluded == ("g0",)
    assert v.verdict == WEAK and "fewer than 2 models in a group" in v.caveats  # one GAN pair remains
    assert v.verdict_all == HOLDS and v.b_all.mean == 8.5


def test_claims_from_report_rows():
    rows = [
        {"id": f"toy2d/dm-eps-s{i}", "probe": "dm", "lambda_1": x, "sigma2": 1.0, "ritz_variance": 1.0}
        for i, x in enumerate([169.0, 121.5, 137.4])
    ]
    rows += [
        {"id": f"toy2d/gan-s{i}", "probe": "gan-g", "lambda_1": x, "sigma2": 2.0, "ritz_variance": 0.5}
        for i, x in enumerate([4.04, 132.2, 208.0])
    ]
    claims = {v.claim: v for v in verdicts.hessian_claims(rows, {"toy2d/gan-s0"})}
    assert set(claims) == {f"toy2d: DM {k} below GAN's (gan-g)" for k in ("lambda_1", "sigma2", "Ritz variance")}
    assert claims["toy2d: DM lambda_1 below GAN's (gan-g)"].verdict == HOLDS
    assert claims["toy2d: DM Ritz variance below GAN's (gan-g)"].verdict == FAILS
    eye = [[100.0, 20.0, 20.0], [20.0, 100.0, 20.0], [20.0, 20.0, 100.0]]
    row = {
        "family": "toy2d",
        "sampler": "ddpm",
        "groups": {"dm-init": {"ids": ["e0", "e1", "e2"], "matrix": eye}},
        "x0": [
            {"kind": "x0 group", "ids": ["x0", "x1", "x2"], "matrix": [[100.0, 5.0, 6.0]] * 3},
            {"kind": "eps vs x0 pair", "ids": ["e0", "x0"], "matrix": [[100.0, 7.0], [7.0, 100.0]]},
        ],
    }
    group, pair = verdicts.consistency_claims(row, set())
    assert group.verdict == HOLDS and group.a.mean == 5.5 and group.b.mean == 20.0
    assert pair.verdict == WEAK and verdicts.X0_STAND_IN in pair.caveats and pair.a.mean == 7.0


@pytest.mark.skipif(not (zoo.zoo_root() / zoo.MANIFEST).exists(), reason="zoo not built")
def test_hessian_page_and_report_write_the_same_verdicts():
    """The Hessian page reads the shipped results without a model; the report through its probes:
    the same numbers, so the same lines."""
    entries = zoo.read_manifest()["entries"]
    collapsed = {e for e, v in entries.items() if zooindex.is_collapsed(v)}
    rows = report.hessian_rows(None, report.HESSIAN, "cpu", None, lambda m: None)
    for family in ("toy2d", "digits"):
        page = [v.text() for v in zooresults.shipped_hessian_claims(family, entries)]
        mine = [r for r in rows if r["id"].startswith(f"{family}/")]
        assert page == [v.text() for v in verdicts.hessian_claims(mine, collapsed)] and len(page) == 6
