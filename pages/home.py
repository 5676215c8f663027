"""Landing page: what dstab is and what the embedded zoo holds."""

import streamlit as st

from dstab import zoo
from dstab.errors import DstabError

st.title("dstab: why diffusion models train more stably than GANs")
st.markdown(
    "Diffusion models trained from different initialisations generate nearly the same image from the same "
    "noise, while GANs do not; their loss landscapes are smoother and their Hessians have smaller top "
    "eigenvalues. dstab measures these claims on real checkpoints and trains DMs faster with the paper's "
    "CLTS timestep curriculum and MDLRC momentum decay."
)
try:
    manifest = zoo.read_manifest()
except DstabError as exc:
    st.error(str(exc))
else:
    entries = manifest["entries"]
    st.subheader(f"The embedded zoo: {len(entries)} runs trained by dstab")
    rows = [
        {
            "id": eid,
            "kind": e["kind"],
            "prediction": e["prediction"] or "",
            "seed": e["seed"],
            "steps": e["steps"],
            "final loss": round(e["loss_last"], 4),
            "train wall time (s)": e["wall_time_s"],
        }
        for eid, e in sorted(entries.items())
    ]
    st.dataframe(rows, hide_index=True)
    cols = st.columns(4)
    images = [(eid, e) for eid, e in sorted(entries.items()) if e["dataset"] == "digits"]
    for i, (eid, e) in enumerate(images):
        cols[i % 4].image(str(zoo.zoo_root() / e["samples"]), caption=eid)
