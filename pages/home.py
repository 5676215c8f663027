"""Landing page: the paper's claims, this zoo's live numbers for them, and the way to each page.

It imports nothing that imports PyTorch while the picked models are zoo entries (the numbers come from
the manifest and the shipped results), so a cold server draws it at once; see `dashboard.server`.
"""

import streamlit as st

from dashboard import sidebar, verdictpanel
from dstab import census, paper, zooindex, zooresults

sel = sidebar.current()
st.title("dstab: why diffusion models train more stably than GANs")
st.markdown(
    "**The claim** (*Why diffusion models are stable and how to make them faster*, ICLR 2024 submission): "
    "diffusion models trained from different initialisations generate nearly the same image from the same noise, "
    f"while GANs do not (consistency, {paper.consistency_ranges()} PSNR). "
    "Their loss landscapes are smoother and their Hessians have smaller top eigenvalues "
    f"(lambda_1 = {paper.HESSIAN['dm'][0]} vs {paper.HESSIAN['gan'][0]}). "
    "Building on that stability, a timestep curriculum (CLTS) and a momentum decay with learning-rate "
    f"compensation (MDLRC) train diffusion models {paper.speedup_range()} faster."
)

st.subheader(f"The same measurements on this zoo ({sel.family})")
entries = sel.manifest["entries"]
claims = zooresults.shipped_consistency_claims(sel.family, entries)
cons_verdict = next((v for v in claims if v.claim.startswith("DMs more consistent than GANs (inits")), None)
hess_verdict = next(
    (
        v
        for v in zooresults.shipped_hessian_claims(sel.family, entries)
        if " lambda_1 below" in v.claim and "(gan-g)" in v.claim
    ),
    None,
)
left, right = st.columns(2)
left.markdown("**Consistency C(q)**, each kind's init group (all its seeds; DDPM, M = 32)")
notes, missing = [], False
for col, kind in zip(left.columns(2), ("dm", "gan")):
    value, note = verdictpanel.group_consistency(sel.family, kind, entries)
    col.metric(kind.upper(), "not computed" if value is None else f"{value:.2f} dB")
    notes += [note] if note else []
    missing |= value is None
if cons_verdict is not None:
    notes.append(f"The claim (DMs more consistent), {verdictpanel.verdict_clause(cons_verdict)}")
left.caption(". ".join(notes) + "." if notes else "")
right.markdown("**Hessian lambda_1**, one pair: the DM and the GAN picked in the sidebar")
pair = []
for col, (kind, choice) in zip(right.columns(2), (("dm", sel.dm), ("gan", sel.gan))):
    found = verdictpanel.report_hessian_of(choice, entries) if choice else None
    collapsed = bool(choice and choice.is_zoo and zooindex.is_collapsed(entries.get(choice.ref, {})))
    name = f"{choice.label}{' (collapsed)' if collapsed else ''}" if choice else "none picked"
    value = found.meta["lambda_1"] if found else None
    col.metric(f"{kind.upper()} {name}", "not computed" if value is None else f"{value:.2f}")
    pair.append((name, value))
if all(v is not None for _, v in pair):
    right.caption(verdictpanel.pair_sentence("lambda_1", *pair, claim_below=True, v=hess_verdict))
elif hess_verdict is not None:
    right.caption(f"The claim (DM lambda_1 below GAN's), {verdictpanel.verdict_clause(hess_verdict)}.")
if missing or any(v is None for _, v in pair):
    st.caption(
        "Numbers come from the results `python -m dstab report` ships for the zoo (DDPM, M = 32; the report's "
        "Hessian probe); the Consistency and Hessian pages compute missing ones."
    )

verdictpanel.home(sel.family, entries)

found_census = census.load()
if found_census:
    st.markdown(f"**Stability census:** {census.headline(found_census)}; see RESULTS.md, `python -m dstab zoo census`.")
else:
    st.caption(
        "Stability census (how many of 16 DM and GAN seeds collapse): not shipped yet; "
        "`python -m dstab zoo census --jobs 2` trains it."
    )

st.subheader("Pages")
pages = [
    ("pages/tour.py", "Guided tour", "the paper's story in 8 steps, one idea per screen, for a lecture or a demo"),
    ("pages/landscape.py", "Loss landscape", "DM and GAN loss surfaces side by side, smoothness numbers"),
    ("pages/interpolation.py", "Interpolation", "loss along the line from an early to a late checkpoint"),
    ("pages/hessian.py", "Hessian", "eigenvalue spectra, lambda_1, trace, variance"),
    ("pages/consistency.py", "Consistency", "same seed, many models: image grids and PSNR (Table 1)"),
    ("pages/diffusion_process.py", "Diffusion process", "forward noising and a DM's reverse trajectory"),
    ("pages/training.py", "Training", "CLTS and MDLRC runs in the background, their loss and FD / FID curves live"),
]
for path, title, what in pages:
    st.page_link(path, label=f"{title}: {what}")

if entries:
    st.subheader(f"The embedded zoo: {len(entries)} runs trained by dstab")
    # a Markdown table, not st.dataframe: that would import pandas and pyarrow (~0.5 s) on a cold server
    head = ["id", "kind", "prediction", "seed", "steps", "final loss", "train wall time (s)", "modes covered"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for eid, e in sorted(entries.items()):
        c = e.get("collapse") or {}
        modes = f"{c['coverage']} of {c['modes']}" + (" **(collapsed)**" if c["collapsed"] else "") if c else "?"
        cells = [
            f"`{eid}`",
            e["kind"],
            e["prediction"] or "",
            e["seed"],
            e["steps"],
            f"{e['loss_last']:.4f}",
            f"{e['wall_time_s']:.0f}",
            modes,
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    st.markdown("\n".join(lines))
    shown = [(eid, e) for eid, e in sorted(entries.items()) if eid.startswith(sel.family + "/")]
    cols = st.columns(4)
    for i, (eid, e) in enumerate(shown):
        cols[i % 4].image(str(zooindex.zoo_root() / e["samples"]), caption=eid)
