"""Training: launch CLTS / MDLRC runs in the background and watch their curves stream in.

Runs are detached `python -m dstab train` processes (dstab.runs); this page only reads
their directories, so closing the tab, reloading or restarting the server loses nothing. While
some run is active a fragment re-reads the new metric rows every few seconds; while none is, it lists
the runs every 10 s, so that a run started by the CLI or another tab shows up without a reload.
"""

import json
import sqlite3

import streamlit as st

from dashboard import downloads, runtracker, server, sidebar, timestepfield, urlstate, verdictpanel
from dstab import paper, runs
from dstab.errors import DstabError
from dstab.experiments import compare, runcost, sweep
from dstab.metricnames import metric_label
from dstab.modelconfig import DDIM_STEPS
from dstab.plots import runs as run_plots
from dstab.runs import curves, runboard
from dstab.runs.rundir import METRICS
from dstab.runs.runmetrics import RunMetrics
from dstab.training import config as train_config

# on a fresh server whose first request is /training, Streamlit runs this file without app.py; importing
# the sidebar switches that mode off, and this call reruns through app.py (its sidebar, its page menu)
selection = sidebar.current()
server.torch_ready()  # this page samples checkpoints in the server process: with the server's thread count

st.title("Training")
st.caption(f"Runs live in {runs.workspace_root()}; they keep training when this tab is closed.")


def metrics_for(statuses) -> dict[str, RunMetrics]:
    """Each run's metrics, kept in this session and topped up with only the rows written since."""
    cache = st.session_state.setdefault("training_metrics", {})
    out = {}
    for s in statuses:
        if s.state == "broken":
            continue
        db = runs.run_dir(s.name) / runs.RUN / METRICS
        m = cache.get(s.name)
        if m is None or m.db != db:
            m = cache[s.name] = RunMetrics(db)
        try:
            m.refresh()
        except sqlite3.Error as exc:  # damaged since its status was read: this run only is skipped
            st.error(f"{s.name}: metrics database unreadable ({exc})")
            continue
        out[s.name] = m
    return out


def with_vanished(statuses) -> list:
    """Runs seen earlier in this session whose directory has since gone stay listed, as broken."""
    known = st.session_state.setdefault("known_runs", set())
    names = {s.name for s in statuses}
    gone = [runs.status(n) for n in sorted(known - names)]
    known |= names
    return statuses + gone


def curves_section(statuses, metrics) -> None:
    names = [s.name for s in statuses if s.name in metrics]
    chosen = runtracker.chart_runs(statuses, names)
    colours = run_plots.run_colours(list(metrics))
    c1, c2, c3 = st.columns(3)
    weight = urlstate.slider("Smoothing (TensorBoard's EMA weight)", "smooth", 0.6, 0.0, 0.99, 0.01, where=c1)
    log_x = urlstate.toggle("Log x", "logx", False, where=c2)
    x_axis = urlstate.radio("x axis", ["iteration", "wall-clock"], "xaxis", "iteration", where=c3, horizontal=True)
    x_title = "iteration" if x_axis == "iteration" else "seconds since the first logged step"
    fd_names = {n: runboard.eval_metric(metrics[n].names()) for n in chosen}
    fd_series = [runtracker.series(metrics[n], n, fd_names[n], x_axis) for n in chosen if fd_names[n]]
    left, right = st.columns(2)
    if fd_series:
        labels = sorted({metric_label(m, short=True) for m in fd_names.values() if m})
        fig = run_plots.curves(
            fd_series, f"{' / '.join(labels)} of EMA samples (lower is better)", "FD", x_title, log_x, colours
        )
        left.plotly_chart(fig, key="fd-curves")
        downloads.figure(fig, "training-fd", where=left)
    else:
        left.info("No FD/FID evaluation yet in the shown runs (it is logged every eval_every steps).")
    loss_series = [runtracker.series(metrics[n], n, "loss", x_axis) for n in chosen if metrics[n].names()]
    if loss_series:
        fig = run_plots.curves(curves.smoothed(loss_series, weight), "Training loss", "loss", x_title, log_x, colours)
        right.plotly_chart(fig, key="loss-curves")
        downloads.figure(fig, "training-loss", where=right)
    quartiles = [
        {**runtracker.series(metrics[n], n, q, x_axis), "quartile": k}
        for n in chosen
        for k, q in enumerate(runboard.QUARTILES)
        if q in metrics[n].names()
    ]
    if quartiles:
        qfig = run_plots.quartile_curves(curves.smoothed(quartiles, weight), x_title, log_x, colours)
        st.plotly_chart(qfig, key="quartile-curves")
        downloads.figure(qfig, "training-quartiles")


def compare_section(statuses) -> None:
    """`dstab compare GROUP` on the page: the same numbers, figures and verdict."""
    groups = sorted({s.group for s in statuses if s.group})
    st.subheader("Compare a group: four readouts of a speed-up, 90% intervals over seeds, one verdict")
    if not groups:
        st.info("Launch a sweep (several variants or seeds) to compare its runs here.")
        return
    c1, c2, c3 = st.columns(3)
    group = urlstate.selectbox("Group", groups, "cmp_group", groups[-1], where=c1)
    variants = sorted({s.preset for s in statuses if s.group == group and s.preset}) or ["baseline"]
    why = "speed-ups are measured against it; the group's baseline by default"
    reference = urlstate.selectbox("Reference variant", variants, "cmp_reference", "baseline", where=c2, help=why)
    axis = urlstate.radio("x axis", list(compare.AXES), "cmp_axis", "iterations", where=c3, horizontal=True)
    try:
        result = compare.compare(group, reference=reference)
    except DstabError as exc:
        st.info(str(exc))
        return
    verdictpanel.speedup(result, axis, group)


def live_view(was_active: bool) -> None:
    try:
        statuses = runs.list_runs()
    except DstabError as exc:
        st.error(str(exc))
        return
    statuses = with_vanished(statuses)
    if not statuses:
        st.info("No runs yet: launch one below.")
        return
    metrics = metrics_for(statuses)
    rows = [runboard.table_row(s, metrics.get(s.name)) for s in statuses]
    runtracker.table(rows)
    downloads.numbers(rows, "training-runs")
    for s in statuses:
        if s.state in ("broken", "died", "failed"):
            st.error(f"{s.name} is {s.state}: {s.reason}")
            if s.log_tail:
                st.code("\n".join(s.log_tail[-8:]), language=None)
    curves_section(statuses, metrics)
    ended = {s.name for s in statuses if not s.active}
    newly_ended = ended - st.session_state.get("training_ended", ended)
    st.session_state["training_ended"] = ended
    now_active = any(s.active for s in statuses)
    if (was_active and (newly_ended or not now_active)) or (now_active and not was_active):
        # a run ended, or one started elsewhere (the CLI, another tab): redraw the whole page once, so that
        # the compare panel reads it and the timer takes the pace for active or idle runs
        st.rerun()


def controls() -> None:
    names = runs.run_names()
    if not names:
        return
    st.subheader("Stop, resume, delete")
    c1, c2, c3, c4 = st.columns([3, 1, 1, 3])
    name = urlstate.selectbox("Run", names, "run", names[-1], where=c1)
    try:
        if c2.button("Stop", key="stop"):
            runtracker.stop_resume(name, "stop")
            st.rerun()
        if c3.button("Resume", key="resume"):
            runtracker.stop_resume(name, "resume")
            st.rerun()
        confirm = c4.text_input("Type the run's name to delete it", key="delete_confirm")
        if c4.button("Delete", key="delete", disabled=confirm != name):
            runs.delete(name, confirm)
            st.session_state.get("known_runs", set()).discard(name)
            runtracker.confirm(f"{name}: deleted.")
            st.rerun()
    except DstabError as exc:
        st.error(str(exc))


@st.cache_data(max_entries=64, show_spinner="Sampling from the checkpoint...")
def sample_png(path: str, mtime_ns: int):
    return runboard.sample_image(path)


def samples_section() -> None:
    names = [n for n in runs.run_names() if runboard.checkpoint_files(n)]
    if not names:
        return
    st.subheader("EMA samples")
    c1, c2 = st.columns([1, 2])
    name = urlstate.selectbox("Run", names, "sample_run", names[-1], where=c1)
    files = runboard.checkpoint_files(name)
    step = c2.select_slider("Checkpoint step", list(files), value=max(files), key=f"sample_step_{name}")
    try:
        img, count = sample_png(str(files[step]), files[step].stat().st_mtime_ns)
    except (DstabError, OSError) as exc:
        st.error(f"cannot sample {files[step].name}: {exc}")
        return
    caption = f"{name}, step {step}: {count} DDIM-{DDIM_STEPS} samples, seed 0 (the same noise at every step)"
    st.image(img, caption=caption)
    downloads.image(img, f"{name}-step{step}")


def hyper_inputs(preset: str, base: dict) -> dict:
    """Widgets for the preset's hyper-parameters, seeded with its own values."""
    k = f"launch_{preset}_"
    c = st.columns(4)
    steps = c[0].number_input("total steps", 1, 10_000_000, base["steps"], key=k + "steps")
    start = paper.launch_defaults(base, steps)  # the paper's values
    per_run = f"{k}{steps}_"  # inputs whose default follows the run's length start afresh with another length
    hyper = {
        "steps": steps,
        "lr": c[1].number_input("learning rate", 1e-7, 1.0, base["lr"], format="%.2e", key=k + "lr"),
        "eval_every": c[2].number_input("eval every (steps)", 1, 10_000_000, start["eval_every"], key=per_run + "ev"),
        "eval_samples": c[3].number_input("eval samples", 2, 100_000, base["eval_samples"], key=k + "es"),
    }
    hyper["checkpoint_every"] = hyper["eval_every"]  # one sample grid per evaluation
    T = base["diffusion"]["T"]
    if base["timesteps"].get("name") == "clts":
        mu = c[0].number_input("CLTS mu (in t)", 0.0, float(T - 1), start["mu"], key=k + "mu")
        target = c[1].number_input("CLTS target_iter", 1, 10_000_000, start["target_iter"], key=per_run + "target")
        sigma = c[2].number_input("CLTS sigma", 1.0, 100.0 * T, start["sigma"], key=k + "sigma")
        hyper["timesteps"] = {"name": "clts", "mu": mu, "sigma": sigma, "target_iter": target}
    if base["momentum"].get("name") != "constant":
        hyper["beta1"] = c[3].number_input("beta0 (initial beta1)", 0.0, 0.999, base["beta1"], key=k + "beta0")
        floor = c[3].number_input("beta1 floor", 0.0, 0.99, start["floor"], key=k + "floor")
        hyper["momentum"] = {"name": base["momentum"]["name"], "floor": floor}
    return hyper


@st.cache_data(max_entries=32, show_spinner=False)
def validated(preset: str, overrides: tuple[str, ...]) -> dict:
    return runs.resolved_config(preset, None, overrides)


def sweep_inputs() -> tuple[list[str], int, str]:
    c1, c2 = st.columns([3, 1])
    presets = sorted(train_config.PRESETS)
    variants = c1.multiselect("Variants (presets) of a sweep", presets, key="sweep_variants")
    # a sweep of variants starts at the complete seeds compare needs of each (with 1 its own compare panel
    # refused it); one run starts at 1 seed. The key follows which, so each has its own default.
    sweeping = bool(variants)
    seeds = c2.number_input(
        "Seeds", 1, 100, compare.MIN_SEEDS if sweeping else 1, key=f"sweep_seeds_{'sweep' if sweeping else 'run'}"
    )
    axes = st.text_area("Sweep axes, one per line: KEY=V1,V2,... (e.g. lr=1e-3,2e-3; width=16,32)", key="sweep_axes")
    if variants and seeds < compare.MIN_SEEDS:
        st.warning(
            f"{seeds} seed per variant: the compare panel needs {compare.MIN_SEEDS} complete seeds of each variant "
            "to estimate a speed-up, so this sweep's runs can be watched but not compared."
        )
    return variants, int(seeds), axes


def launch_form(statuses) -> None:
    with st.expander("Launch a run or a sweep", expanded=not statuses):
        c1, c2, c3, c4 = st.columns(4)
        dataset = c1.selectbox("Dataset", ["digits", "toy2d:8gaussians", "toy2d:checkerboard", "toy2d:swissroll"])
        size = c2.selectbox("Model size", list(runboard.MODEL_SIZES[runboard.family(dataset)]), index=1)
        preset = c3.selectbox(
            "Preset", sorted(train_config.PRESETS), index=sorted(train_config.PRESETS).index("mdlrc-clts")
        )
        device = c4.selectbox("Device", runtracker.devices())
        base = {**train_config.resolve(preset)}
        hyper = hyper_inputs(preset, base)
        overrides = runboard.request_overrides(dataset, size, hyper)
        name = st.text_input("Run name (a sweep's group)", f"{preset}-{runboard.family(dataset)}", key="launch_name")
        variants, seeds, axes = sweep_inputs()
        single = variants in ([], [preset]) and seeds == 1 and not axes.strip()
        try:
            if single:
                config = validated(preset, tuple(overrides))
            else:
                group, planned = sweep.from_form(name, variants or [preset], seeds, axes, overrides)
                # what the runs would refuse, before the button is offered; typing an axis downloads nothing
                for note in sweep.dry_check(planned, device, names=False):
                    st.info(note)
                config = planned[0].config
        except DstabError as exc:
            st.error(f"The trainer refuses this configuration: {exc}")
            return
        planned_configs = [config] if single else [r.config for r in planned]
        variants_ = {preset: config} if single else {r.label: r.config for r in planned}
        preview_section(variants_, planned_configs, statuses)
        size_section([(name, config)] if single else [(r.name, r.config) for r in planned], device)
        count = 1 if single else len(planned)
        if st.button(f"Launch {count} run{'s' * (count > 1)}", type="primary", key="launch"):
            try:
                if single:
                    runs.start(name, preset=preset, overrides=overrides, device=device)
                else:
                    sweep.launch(group, planned, device=device)
            except DstabError as exc:
                st.error(str(exc))
            else:
                runtracker.confirm(f"Launched {count} run{'s' * (count > 1)} as {name}: shown on the charts above.")
                st.rerun()


def preview_section(configs: dict, planned: list[dict], statuses) -> None:
    """P(t) and the optimiser's schedules of the run, or of one variant of the sweep at a time
    (`configs`: label -> config), and the time every `planned` run will take. The iterations P(t) is
    shown at follow the run's length."""
    labels = list(dict.fromkeys(configs))
    label = labels[0] if len(labels) == 1 else st.selectbox(f"Preview a variant ({len(labels)})", labels)
    config = configs[label]
    T = config["diffusion"]["T"]
    target = int(config["timesteps"].get("target_iter", paper.clts_target(config["steps"])))
    default = sorted({0, target // 2, target, config["steps"]})
    # keyed by what sets the defaults: another run length or target starts from its own iterations
    text = st.text_input(
        "Show P(t) at iterations", ", ".join(map(str, default)), key=f"pmf_its_{config['steps']}_{target}"
    )
    try:
        its = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        st.error(f"iterations must be whole numbers separated by commas, got {text!r}")
        return
    view = runboard.preview(config, its)
    c1, c2 = st.columns(2)
    c1.plotly_chart(run_plots.pmf(view["t"], view["pmf"], T), key="pmf")
    c2.plotly_chart(run_plots.schedules(view["iterations"], view["beta1"], view["lr"]), key="schedules")
    estimate_time(planned, statuses)


def size_section(planned: list[tuple[str, dict]], device: str) -> None:
    """What the launch will cost, as `--dry-run` prints it: counts at once; FLOPs, disk and device-hours
    from a few timed steps and one timed evaluation batch on a click (runcost)."""
    counts = runcost.lines(runcost.estimate(planned, device, measure_time=False))
    key = json.dumps([planned, device], sort_keys=True)
    sized = st.session_state.setdefault("launch_sizes", {})
    if st.button("Size this launch: time a few steps and one evaluation batch here", key="size"):
        try:
            sized[key] = runcost.lines(runcost.estimate(planned, device))
        except DstabError as exc:
            st.error(f"cannot size this launch: {exc}")
    st.code("\n".join(sized.get(key, counts)), language=None)


def rate_for(config: dict, statuses) -> float | None:
    """Steps per second of runs of this setup seen on this machine, or measured here on request."""
    similar = [s for s in statuses if (c := runboard.run_config(s.name)) and runboard.same_setup(c, config)]
    rate = None
    for s in reversed(similar):
        m = st.session_state.get("training_metrics", {}).get(s.name)
        if m is not None:
            steps, _, walls = m.series("loss")
            rate = curves.rate_and_eta(steps, walls, None, since=s.started)[0] or rate
    key = json.dumps({k: config[k] for k in ("kind", "dataset", "arch", "batch_size")}, sort_keys=True)
    measured = st.session_state.setdefault("measured_rates", {})
    if rate is None and key in measured:
        rate = measured[key]
    if rate is None and st.button("Measure steps/s here (a few training steps)", key=f"measure-{key}"):
        measured[key] = runboard.measure_steps_per_s(config)
        st.rerun()
    return rate


def estimate_time(configs: list[dict], statuses) -> None:
    """The launch's training time: every planned run's steps at its setup's rate, the runs taking turns
    `slots` at a time per device (DSTAB_MAX_RUNS_PER_DEVICE)."""
    minutes = []
    for config in configs:
        rate = rate_for(config, statuses)
        if rate is None:
            return
        minutes.append(config["steps"] / rate / 60)
    slots = runs.slots_per_device()
    total = sum(minutes) / min(slots, len(minutes))
    runs_text = f"{len(minutes)} runs of {min(minutes):.1f}-{max(minutes):.1f} min" if len(minutes) > 1 else "one run"
    st.info(
        f"≈ {total:.1f} min of training for {runs_text}, {slots} at a time on a device "
        "(measured on this machine; evaluations add to it)."
    )


try:
    statuses = runs.list_runs()
except DstabError as exc:
    st.error(str(exc))
    st.stop()
active = any(s.active for s in statuses)
runtracker.show_confirmation()
# polls fast while a run is active; slowly while none is, so that a run started elsewhere shows up
st.fragment(live_view, run_every=runboard.POLL_S if active else runboard.IDLE_POLL_S)(active)
compare_section(statuses)
controls()
samples_section()
launch_form(statuses)
timestepfield.section(selection.dm)  # every preset's P(t) on one axis (issue 23)
