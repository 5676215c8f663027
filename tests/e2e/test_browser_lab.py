"""Issue 25 in a real browser (Chromium, 1280 x 720): imported models analysed on every page, the state
that never jumps, Cancel that cancels, and the guided tour."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dstab import checkpoints, cli, models, zoo
from dstab.runs import runboard
from tests.apptest.test_app_datapick import diffusers_folder
from tests.conftest import fill_deterministic
from tests.e2e.test_browser_training import TINY

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TIMEOUT_MS = 300_000  # a hang guard, no speed limit (a 25-point surface once took 121 s: Streamlit's post-run GC)
CHART = ".js-plotly-plot .main-svg"
# the charts' titles as plotly.js holds them, without markup (Streamlit's theme sets titles in bold)
TITLES_JS = """() => [...document.querySelectorAll('.js-plotly-plot')]
  .map(el => ((el.layout.title || {}).text || '').replace(/<[^>]*>/g, ''))"""
# a chart drawn whose title starts with the argument
TITLED = f"start => ({TITLES_JS})().some(t => t.startsWith(start))"


def _open(browser_context, url: str):
    page = browser_context.new_page()
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(url, wait_until="domcontentloaded")
    return page


def _idle(page) -> None:
    time.sleep(0.5)  # the status widget appears a moment after an action
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=TIMEOUT_MS)


def _query(page) -> dict:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlparse(page.url).query))


def _chart_titles(page) -> list[str]:
    return page.evaluate(TITLES_JS)


def _titled(page, start: str) -> None:
    """Until a chart whose title starts with `start` is drawn; else a failure naming the charts and notes shown."""
    try:
        page.wait_for_function(TITLED, arg=start, timeout=TIMEOUT_MS)
    except Exception:
        notes = page.locator('[data-testid="stAlert"]').all_inner_texts()
        shown = page.locator('[data-testid="stMain"]').inner_text()[:3000]
        raise AssertionError(
            f"no chart titled {start!r}: charts {_chart_titles(page)}, notes {notes}; {shown}"
        ) from None


def _slider(page) -> str:
    return page.locator('[data-testid="stSliderThumbValue"]').first.inner_text()


SLIDER_AND_URL = """t => document.querySelector('[data-testid="stSliderThumbValue"]')?.innerText === t
  && new URL(location.href).searchParams.get('t') === t"""


def _t_is(page, t: str) -> None:
    """The slider and the URL both show t, once the page has settled (a background job's end reruns it)."""
    try:
        page.wait_for_function(SLIDER_AND_URL, arg=t, timeout=TIMEOUT_MS)
    except Exception:
        raise AssertionError(f"slider {_slider(page)}, URL t {_query(page).get('t')}, wanted {t}") from None
    _idle(page)
    assert _slider(page) == t and _query(page)["t"] == t


def _add_by_path(page, path: Path) -> None:
    if not page.get_by_label("Path on the server").is_visible():  # the sidebar's expander is closed
        page.get_by_text("Your own checkpoint").click()
    page.get_by_label("Path on the server").fill(str(path))
    page.get_by_label("Path on the server").press("Enter")
    _idle(page)
    page.get_by_role("button", name="Load path").click()
    # the sidebar's lists offer the file once its "added" note is drawn (the run that loaded it)
    page.get_by_text(re.compile(rf"^added yours: .*{re.escape(path.name)} to the (DM|GAN) list")).wait_for(
        timeout=TIMEOUT_MS
    )
    _idle(page)


def _pick(page, label: str, option: str) -> None:
    """Choose in a selectbox (a combobox whose text filters its list) by typing: the list draws only the
    options in view."""
    box = page.get_by_role("combobox", name=label, exact=True)
    box.click()
    box.fill(option)
    page.get_by_role("option", name=option, exact=True).click(timeout=TIMEOUT_MS)
    _idle(page)
    assert box.input_value() == option


@pytest.fixture(scope="module")
def imported(server):
    """A diffusers UNet2DModel folder, an improved-diffusion conversion (both 3 x 8 x 8, their headers
    naming no dataset dstab knows), a folder of images for them, and a dstab training run's checkpoints."""
    ws = Path(server["workspace"])
    ws.mkdir(parents=True, exist_ok=True)
    diffusers = diffusers_folder(ws)
    rng = np.random.default_rng(0)
    images = ws / "images"
    images.mkdir(exist_ok=True)
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(images / f"{i:03d}.png")
    arch = {"arch": "unet", "image_size": 8, "in_channels": 3, "model_channels": 32, "channel_mult": [1, 2]}
    torch.save(fill_deterministic(models.build(arch)).state_dict(), ws / "model000500.pt")
    flags = ["--flag", "image_size=8", "--flag", "diffusion_steps=4000", "--flag", "attention_resolutions=4"]
    assert cli.main(["convert", str(ws / "model000500.pt"), "-o", str(ws / "id.safetensors"), *flags]) == 0
    from dstab import runs

    root = ws / "runs"
    tiny = [o for o in TINY if not o.startswith(("steps=", "checkpoint_every="))] + ["steps=40", "checkpoint_every=20"]
    runs.start("e2e-own", preset="baseline", overrides=tiny, device="cpu", threads=1, root=root, group="e2e-grp")
    assert runs.wait("e2e-own", timeout=240, root=root).state == "finished"
    steps = runboard.checkpoint_files("e2e-own", root)
    return {
        "diffusers": diffusers,
        "improved": ws / "id.safetensors",
        "data": f"folder:{images}?size=8",
        "run": steps,
    }


def test_imported_models_are_analysed_on_the_pages(server, browser_context, imported):
    for what in ("diffusers", "improved"):
        assert checkpoints.load(imported[what]).header["dataset"] == "unknown"
    page = _open(browser_context, server["url"] + "/landscape?data=toy2d&grid=5")
    page.wait_for_selector(CHART, timeout=TIMEOUT_MS)
    # the diffusers folder: required data, explained, picked with the control, typed under the CLI's rule
    _add_by_path(page, imported["diffusers"])
    _pick(page, "DM", "yours: ddpm-tiny")
    assert page.get_by_text("yours: ddpm-tiny needs a dataset").count() == 1
    page.get_by_label(re.compile("^DM data")).click()
    page.get_by_role("option", name="a folder or CIFAR-10 path...").click()
    _idle(page)
    page.get_by_label("DM data spec").fill(imported["data"])
    page.get_by_label("DM data spec").press("Enter")
    _titled(page, "yours: ddpm-tiny")
    assert _query(page)["dmdata"] == imported["data"]
    # the improved-diffusion conversion (T = 4000), its data by the link; its t the nearest it offers
    link = urllib.parse.urlencode(
        {"data": "toy2d", "grid": 5, "dm": f"path:{imported['improved']}", "dmdata": imported["data"]}
    )
    page = _open(browser_context, f"{server['url']}/landscape?{link}")
    _titled(page, "yours: id.safetensors")
    assert "t = 500 is not offered here" not in page.content()  # a fresh link: the default, nearest to 500
    assert _slider(page) == "400" and "(DM, t = 400)" in " ".join(_chart_titles(page))
    # a dstab run's checkpoint: its own dataset; the run's first saved step is the line's early end
    last = imported["run"][max(imported["run"])]
    link = urllib.parse.urlencode({"data": "toy2d", "dm": f"path:{last}", "steps": 4})
    page = _open(browser_context, f"{server['url']}/interpolation?{link}")
    page.wait_for_selector(CHART, timeout=TIMEOUT_MS)
    _idle(page)
    assert page.get_by_text("added yours: step0000040.safetensors to the DM list (from the link)").count() == 1
    early = page.get_by_role("combobox", name="DM line from (alpha = 0)", exact=True).input_value()
    assert early == "yours: step0000020.safetensors (step 20)"  # the run's first saved step is the early end
    traced = """start => [...document.querySelectorAll('.js-plotly-plot')]
      .some(el => (el._fullData || []).some(t => (t.name || '').startsWith(start)))"""
    page.wait_for_function(traced, arg="yours: step0000040.safetensors", timeout=TIMEOUT_MS)  # its curve drawn
    assert not page.locator('[data-testid="stAlertContentError"]').count()


def test_the_timestep_and_the_url_never_part(server, browser_context, tmp_path):
    ws = Path(server["workspace"])
    ws.mkdir(parents=True, exist_ok=True)
    for name, T, nudge in (("nudged.safetensors", None, 0.01), ("t50.safetensors", 50, 0.0)):
        bundle = checkpoints.load(Path(server["zoo"]) / "toy2d/dm-eps-s1/final.safetensors")
        with torch.no_grad():
            for p in bundle.model.parameters():
                p.add_(nudge)
        header = {**bundle.header, "diffusion": {**bundle.header["diffusion"], "T": T or bundle.diffusion.T}}
        checkpoints.save(ws / name, header, {"model": bundle.model})
    page = _open(browser_context, server["url"] + "/landscape?data=toy2d&grid=5&t=750")
    page.wait_for_selector(CHART, timeout=TIMEOUT_MS)
    _t_is(page, "750")
    for name in ("nudged.safetensors", "t50.safetensors"):
        _add_by_path(page, ws / name)
    _pick(page, "DM", "yours: nudged.safetensors")  # the same T: t stays (it jumped to 1 before)
    _t_is(page, "750")
    _pick(page, "DM", "yours: t50.safetensors")  # T = 50: the nearest it offers, said so
    _t_is(page, "49")
    assert page.get_by_text("t = 750 is not offered here; the nearest, 49, is used.").count() == 1
    _pick(page, "DM", "toy2d/dm-eps-s0")  # the user's own t comes back
    _t_is(page, "750")
    page.reload(wait_until="domcontentloaded")
    page.wait_for_selector(CHART, timeout=TIMEOUT_MS)
    _t_is(page, "750")
    assert _query(page)["dm"] == "toy2d/dm-eps-s0"


def test_the_training_pages_show_choice_survives_a_reload(server, browser_context, imported):
    page = _open(browser_context, server["url"] + "/training")
    page.get_by_role("heading", name="Training", exact=True).wait_for(timeout=TIMEOUT_MS)
    _idle(page)
    _pick(page, "Show", "group e2e-grp")
    assert _query(page)["show"] == "group e2e-grp"
    page.reload(wait_until="domcontentloaded")
    page.get_by_role("heading", name="Training", exact=True).wait_for(timeout=TIMEOUT_MS)
    _idle(page)
    assert page.get_by_role("combobox", name="Show", exact=True).input_value() == "group e2e-grp"
    assert _query(page)["show"] == "group e2e-grp"


def _stored_dm_hessians(cache: Path, trace: int) -> list[Path]:
    folder = cache / "hessian"
    found = []
    for path in folder.glob("*.json") if folder.exists() else ():
        params = json.loads(path.read_text())["params"]
        if params["probe"]["kind"] == "dm" and params["trace_samples"] == trace:
            found.append(path)
    return found


def _job_box(page, status):
    """The live box (a bordered st.container, a vertical block) of the job whose status line matches
    `status`, once it is shown and not greyed out: the innermost block, the last of those that hold it."""
    line = page.locator('[data-testid="stProgress"]:not([data-stale="true"])').filter(has_text=status)
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while line.count() != 1:  # a rerun's old box can linger beside the new one for a moment
        assert time.monotonic() < deadline, f"{line.count()} live boxes say {status!r}"
        time.sleep(0.1)
    return page.locator('[data-testid="stVerticalBlock"]').filter(has=line).last


def test_cancel_stops_the_job_stores_nothing_and_leaves_no_stale_box(server, browser_context):
    # 2,000 Hutchinson products of the digits DM: a job long enough to be cancelled part-way on any machine,
    # that reports after every product. The GAN's (a few seconds) waits in the queue behind it: it is
    # cancelled there, before it starts (once the DM's ended it could finish before a click reached it)
    before = len(Path(server["log"]).read_text())  # the session's server log: this test's lines follow
    page = _open(browser_context, server["url"] + "/hessian?data=digits&k=1&trace=2000&slq=1&seed=977")
    _job_box(page, re.compile(r"dm-eps-s0 Hessian: \d+ s of .* \(\w+"))  # running, in a stage
    _job_box(page, "gan-s0 Hessian: queued behind dm-eps-s0 Hessian").get_by_role("button", name="Cancel").click()
    page.get_by_text("gan-s0 Hessian: cancelled; nothing was stored.", exact=False).wait_for(timeout=TIMEOUT_MS)
    assert "dm-eps-s0 Hessian: cancelled" not in Path(server["log"]).read_text()[before:]  # the DM's runs on
    _job_box(page, re.compile(r"dm-eps-s0 Hessian: \d+ s of ")).get_by_role("button", name="Cancel").click()
    page.get_by_text("dm-eps-s0 Hessian: cancelled; nothing was stored.", exact=False).wait_for(timeout=TIMEOUT_MS)
    log = Path(server["log"]).read_text()[before:]
    ended = re.findall(r"dm-eps-s0 Hessian: cancelled after [\d.]+ s, (\d+)% done \(([^)]*)\)", log)
    assert ended and int(ended[-1][0]) < 100, log[-2000:]  # stopped part-way, at its next product
    assert re.search(r"gan-s0 Hessian: cancelled (in the queue|after [\d.]+ s, 0% done \(before its first step)", log)
    assert "gan-s0 Hessian: finished" not in log
    assert _stored_dm_hessians(Path(server["cache"]), 2000) == []
    _idle(page)
    assert page.locator('[data-stale="true"]').count() == 0  # no greyed box of an earlier run left
    assert (
        page.get_by_role("button", name="Cancel").count() == 0
        and page.locator('[data-testid="stProgress"]').count() == 0
    )
    assert page.get_by_role("button", name="Compute").count() >= 2  # either can be started again


def test_the_guided_tour_walks_by_keyboard_with_figures_and_links(real_server, browser_context):
    entries = zoo.read_manifest()["entries"]
    page = _open(browser_context, real_server["url"] + "/tour?data=digits")
    page.wait_for_selector(CHART, timeout=TIMEOUT_MS)
    _idle(page)
    seen = []
    for k in range(1, 9):
        heading = page.get_by_role("heading", name=re.compile(rf"^{k}\. "))
        heading.wait_for(timeout=TIMEOUT_MS)
        page.wait_for_selector(CHART, timeout=TIMEOUT_MS)
        _idle(page)
        seen.append(heading.inner_text())
        assert page.get_by_text("On this zoo", exact=True).count() == 1
        assert page.get_by_role("button", name=f"Download tour-step-{k}").count() == 1
        href = page.get_by_role("link", name=re.compile("Open this in the full page")).get_attribute("href")
        if k == 4:
            landscape = href
        if k < 8:
            page.keyboard.press("ArrowRight")
            page.wait_for_function(
                f"() => new URL(location.href).searchParams.get('step') === '{k + 1}'", timeout=TIMEOUT_MS
            )
    assert len(set(seen)) == 8
    page.keyboard.press("ArrowLeft")
    page.get_by_role("heading", name=re.compile(r"^7\. ")).wait_for(timeout=TIMEOUT_MS)
    assert "data=digits" in landscape and "t=500" in landscape and "dm=digits%2Fdm-eps-s0" in landscape
    full = _open(browser_context, urllib.parse.urljoin(real_server["url"] + "/tour", landscape))
    full.wait_for_selector(CHART, timeout=TIMEOUT_MS)
    _idle(full)
    assert _slider(full) == "500" and "dm-eps-s0 (DM, t = 500)" in " ".join(_chart_titles(full))
    assert "digits/dm-eps-s0" in entries
