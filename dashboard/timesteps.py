"""The DM timestep control of the Landscape and Interpolation pages: the values the picked model offers,
which of them are stored already, and a choice that survives a change of model.

The zoo ships surfaces at `zooresults.SURFACE_TIMESTEPS` of its T = 1000 DMs; a model with another T is
offered the same fractions of its own T. The option labels never change with the model: which values
are stored ("instant") is said in a caption under the control. (Labels that changed with the model made
Chromium's slider and the server disagree by one step: the URL said t = 1 while the slider showed 750.)
A model switch keeps the chosen t when the new model offers it, else takes the nearest, with a note.
"""

from __future__ import annotations

from dstab import zooresults
from dstab.errors import DstabError

from . import compute, urlstate

ZOO_T = 1000
DEFAULT = zooresults.DM_TIMESTEPS[1]


def choices(T: int | None) -> list[int]:
    """The timesteps offered for a DM with `T` steps (None: the zoo's)."""
    if T is None or T == ZOO_T:
        return list(zooresults.SURFACE_TIMESTEPS)
    return sorted({min(T - 1, max(1, round(t * T / ZOO_T))) for t in zooresults.SURFACE_TIMESTEPS})


def stored(make_spec, options, bundles, device="cpu") -> list:
    """The options whose result is at hand (drawn at once, no computing): `make_spec(option)` is the spec the
    page would ask for with it; looked up once per render with the page's own asks (`compute.found`)."""
    out = []
    for c in options:
        try:
            hit = compute.found(make_spec(c), bundles, device)
        except DstabError:  # an option this model cannot take
            continue
        if hit is not None:
            out.append(c)
    return out


def instant_text(options, instant) -> str:
    if not instant:
        return "None stored yet for this model: each t is computed when chosen."
    rest = "the others are computed when chosen" if len(instant) < len(options) else "all of them"
    return f"Stored, drawn at once: t = {', '.join(str(t) for t in instant)}; {rest}."


class Control:
    """The timestep slider (URL parameter `t`); `note_stored()`, called once the page has its results,
    names the values stored by then under it (a value computed on this run included)."""

    def __init__(self, make_spec, bundles, T: int | None, where, device="cpu", label: str = "DM timestep t"):
        self.options, self.make_spec, self.bundles, self.device = choices(T), make_spec, bundles, device
        self.t = urlstate.select_slider(label, self.options, "t", DEFAULT, where=where, keep_nearest=True)
        self._slot = where.empty()

    def note_stored(self) -> None:
        instant = stored(self.make_spec, self.options, self.bundles, self.device) if self.bundles else []
        self._slot.caption(instant_text(self.options, instant))
