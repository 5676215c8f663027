"""The data each picked model's probe draws its batch from: a control on the pages that need data
(Loss landscape, Interpolation, Hessian, Diffusion process).

By default a model is probed on its header's dataset, when `dstab.confine` allows it (a built-in set, or
a folder inside the allowed roots). A header that names none, or one that is refused (an imported
diffusers folder says 'unknown'), makes the choice required: the control starts empty, says why, and
that model's analyses wait for it. A pick is a built-in set or a typed `folder:PATH` / `cifar10:PATH`
spec, under the CLI's rule for `--dataset` (`confine.chosen_dataset`). The choice belongs to the model,
not the page: it is remembered per model for the session, and the URL carries the current models'
choices (`dmdata`, `gandata`) across pages and into shared links.
"""

from __future__ import annotations

import streamlit as st

from dstab import confine, data
from dstab.errors import DstabError

OWN = "its own"
TYPED = "a folder or CIFAR-10 path..."
CHOSEN = "dstab_data_for"  # {model ref: dataset spec}, this session's picks
TYPING = "dstab_data_typing"  # model refs whose user chose to type a spec


def header_dataset(bundle) -> tuple[str | None, str | None]:
    """(the header's dataset if it may be read, why not otherwise)."""
    try:
        return confine.header_dataset(bundle.header.get("dataset"), bundle.name), None
    except DstabError as exc:
        return None, str(exc)


def _remembered(kind: str, ref: str) -> str | None:
    chosen = st.session_state.setdefault(CHOSEN, {})
    seeded = f"dstab_data_seeded_{kind}"
    if not st.session_state.get(seeded):  # a fresh session: the link's choice is this model's
        st.session_state[seeded] = True
        linked = st.query_params.get(f"{kind}data")
        if linked and ref not in chosen:
            chosen[ref] = linked
    return chosen.get(ref)


def _publish(kind: str, spec: str | None) -> None:
    name = f"{kind}data"
    if spec is None:
        if name in st.query_params:
            del st.query_params[name]
    elif st.query_params.get(name) != spec:
        st.query_params[name] = spec


def control(kind: str, choice, bundle, where) -> tuple[str | None, bool]:
    """(the dataset spec for this model's probes, None for its header's; whether it is ready). Draws the
    control in `where`; a required or refused choice is explained there."""
    own, why = header_dataset(bundle)
    options = ([OWN] if own else []) + data.explicit_choices() + [TYPED]
    picked = _remembered(kind, choice.ref)
    typed = picked if picked is not None and picked not in options else None
    typing = st.session_state.setdefault(TYPING, set())
    current = TYPED if typed or choice.ref in typing else (picked or (OWN if own else None))
    key = f"data_pick_{kind}"
    st.session_state[key] = current  # the model's remembered choice, whichever page drew it last

    def remember():
        value = st.session_state[key]
        chosen = st.session_state.setdefault(CHOSEN, {})
        typing.discard(choice.ref)
        if value == TYPED:
            typing.add(choice.ref)
        elif value in (None, OWN):
            chosen.pop(choice.ref, None)
        else:
            chosen[choice.ref] = value

    label = f"{kind.upper()} data" + (f" (its own: {own})" if own else "")
    value = where.selectbox(
        label,
        options,
        key=key,
        on_change=remember,
        placeholder="required: choose a dataset",
        format_func=lambda o: f"{o}: {own}" if o == OWN else o,
        help="the data the probe's fixed batch is drawn from; a model's own dataset by default",
    )
    if value is None:
        where.warning(f"{choice.label} needs a dataset: {why}.")
        _publish(kind, None)
        return None, False
    if value == TYPED:
        text = where.text_input(
            f"{kind.upper()} data spec",
            value=typed or "",
            key=f"data_typed_{kind}_{choice.ref}",
            placeholder="folder:workspace/images?size=32",
        )
        if not text.strip():
            where.info("Type folder:PATH (a folder of images, ?size=N) or cifar10:PATH inside the allowed roots.")
            return None, False
        try:
            spec = confine.chosen_dataset(text, f"{kind.upper()} data")
        except DstabError as exc:
            where.error(str(exc))
            return None, False
        st.session_state.setdefault(CHOSEN, {})[choice.ref] = spec
        _publish(kind, spec)
        return spec, True
    spec = None if value == OWN else value
    _publish(kind, spec)
    return spec, True


def row(selection, bundles: dict) -> dict[str, str | None]:
    """The data controls of the picked DM and GAN in two columns (as the results below them): {kind: the
    dataset spec for its probes, None for its header's}, for the models that are ready only."""
    out = {}
    for (kind, choice), where in zip((("dm", selection.dm), ("gan", selection.gan)), st.columns(2)):
        if choice is None or bundles.get(kind) is None:
            continue
        spec, ready = control(kind, choice, bundles[kind], where)
        if ready:
            out[kind] = spec
    return out
