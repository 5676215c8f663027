"""A user's checkpoints are first-class (issue 25): a run folder's steps are the interpolation's early
end, any checkpoints of one kind form a consistency group, each file is listed once under `yours: NAME`,
and every way of adding one says so."""

import pytest
import torch

from dstab import checkpoints, zoo
from dstab.analysis import consistency as cons
from dstab.analysis import interpolation
from dstab.analysis.specs import ProbeSpec


def _run_folder(dash_env, name: str = "my-run", steps=(100, 200, 400)) -> list:
    """A training run's checkpoint folder in the workspace: the zoo's toy2d DM nudged a little more per step."""
    folder = dash_env["root"] / "workspace" / "runs" / name / "run" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, step in enumerate(steps):
        bundle = checkpoints.load(zoo.checkpoint_path("toy2d/dm-eps-s1"))
        with torch.no_grad():
            for p in bundle.model.parameters():
                p.add_(0.02 * (i + 1))
        path = folder / f"step{step:07d}.safetensors"
        checkpoints.save(path, {**bundle.header, "step": step}, {"model": bundle.model})
        out.append(path)
    return out


def _add_by_path(at, path):
    at.text_input(key="own_path").input(str(path))
    return at.button(key="own_path_load").click().run()


def test_a_run_folders_steps_are_the_lines_early_end(app, dash_env):
    first, _, last = _run_folder(dash_env)
    at = app("pages/interpolation.py", data="toy2d", t="500")
    _add_by_path(at, last)
    assert "added yours: step0000400.safetensors to the DM list (path)" in [s.value for s in at.success]
    at.selectbox(key="dm").set_value(f"path:{last}").run()
    assert not at.exception, at.exception
    ends = at.selectbox(key="interpolation.dmfrom")
    # the folder's steps, the earliest first and the default; then the dataset's zoo DMs of this architecture
    assert ends.options[:2] == [
        "yours: step0000100.safetensors (step 100)",
        "yours: step0000200.safetensors (step 200)",
    ]
    assert ends.value == ends.options[0] and "dm-eps-s0" in ends.options and "dm-eps-wide" not in ends.options
    assert not any("no early checkpoint" in e.value for e in at.error)
    row = next(r for r in at.table[0].value.to_dict("records") if r["kind"] == "DM")
    assert row["model"] == "yours: step0000400.safetensors"
    probe = ProbeSpec.of("dm", 500, batch_size=64, seed=0)
    ref = interpolation.interpolate(
        probe.build(checkpoints.load(last)), probe.build(checkpoints.load(first)), -0.5, 1.5, 20
    )
    assert row["loss early (alpha 0)"] == pytest.approx(ref.meta["loss_b"], rel=1e-9)
    assert row["roughness"] == pytest.approx(ref.meta["metrics"]["roughness"], rel=1e-9)


def test_any_checkpoints_of_one_kind_form_a_consistency_group(app, dash_env):
    mine = _run_folder(dash_env, "group-run", steps=(300,))[0]
    at = app("pages/consistency.py", data="toy2d", m="4", group="checkpoints you choose")
    _add_by_path(at, mine)
    ref = f"path:{mine}"
    picker = at.multiselect(key="consistency.dms")
    assert "yours: step0000300.safetensors" in picker.options  # its label, not its server path
    picker.set_value(["toy2d/dm-eps-s0", ref]).run()
    assert not at.exception, at.exception
    rows = {r["group"]: r for r in at.table[0].value.to_dict("records")}
    ids = ["toy2d/dm-eps-s0", ref]
    bundles = [checkpoints.load(zoo.checkpoint_path(ids[0])), checkpoints.load(mine)]
    expected = cons.consistency(bundles, ids, num=4, seed=0, sampler="ddpm").score
    assert rows["DM"]["C(q) dB"] == pytest.approx(expected, rel=1e-9) and rows["DM"]["models N"] == 2
    assert at.query_params["dms"] == ",".join(ids)  # the group is in the link
    verdict = next(m.value for m in at.markdown if "your chosen checkpoints" in m.value)
    assert "yours: step0000300.safetensors" in verdict and "path:" not in verdict
    picker = at.multiselect(key="consistency.dms").set_value([ref]).run()
    assert any("choose at least 2 DMs" in e.value for e in at.error)


def test_each_file_is_listed_once_and_named_by_its_file(app, dash_env):
    at = app("pages/landscape.py", data="toy2d", grid="5")
    _add_by_path(at, zoo.checkpoint_path("toy2d/dm-eps-s2"))  # a zoo file by path is that zoo entry
    assert any("that file is the zoo's toy2d/dm-eps-s2" in i.value for i in at.info)
    assert not at.session_state["dstab_user_checkpoints"]
    a = _run_folder(dash_env, "run-a", steps=(100,))[0]
    b = _run_folder(dash_env, "run-b", steps=(100,))[0]
    _add_by_path(at, a)
    _add_by_path(at, a)  # again: still one entry
    _add_by_path(at, b)  # the same file name from another run: its folder tells them apart
    shown = [o for o in at.selectbox(key="dm").options if o.startswith("yours: ")]
    assert shown == ["yours: run-a/…/step0000100.safetensors", "yours: run-b/…/step0000100.safetensors"]


def test_a_link_naming_a_users_file_says_it_added_it(app, dash_env):
    mine = _run_folder(dash_env, "linked-run", steps=(500,))[0]
    at = app("pages/landscape.py", data="toy2d", grid="5", dm=f"path:{mine}")
    assert not at.exception, at.exception
    assert "added yours: step0000500.safetensors to the DM list (from the link)" in [
        s.value for s in at.sidebar.success
    ]
    assert at.selectbox(key="dm").value == f"path:{mine}"
