"""The shared sidebar: which DM and which GAN every page analyses, and on what device.

Zoo entries are offered grouped by dataset and kind; a user's own checkpoint
joins the list of its kind once it loads, from a server-side path (confined to
the allowed roots) or an upload (bounded, saved into the workspace). The
choice is kept in the URL (`data`, `dm`, `gan`): zoo ids, or `path:<file>`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

import streamlit as st

from dstab import zooindex
from dstab.errors import DstabError

from . import figures, server, urlstate, userfiles

server.configure()

PATH_PREFIX = "path:"


@dataclass(frozen=True)
class ModelChoice:
    ref: str  # zoo id, or "path:<absolute path>"
    label: str
    kind: str  # "dm" | "gan"
    dataset: str
    path: Path
    early: Path | None = None  # the same run's early checkpoint (zoo only), for interpolation
    sha256: str | None = None
    collapse: str = ""  # "collapsed: 1 of 8 modes" when the manifest records the model as collapsed
    nonfinite: tuple[str, ...] = ()  # weights holding NaN or inf (a user's diverged or damaged checkpoint)

    @property
    def is_zoo(self) -> bool:
        return not self.ref.startswith(PATH_PREFIX)


@dataclass(frozen=True)
class Selection:
    family: str
    dm: ModelChoice | None
    gan: ModelChoice | None
    manifest: dict

    @property
    def device(self):
        """The torch.device analyses run on: CUDA when present. Imports PyTorch (Home never asks)."""
        server.torch_ready()
        from dstab.device import resolve_device

        return resolve_device("auto")


@st.cache_resource(max_entries=32, show_spinner=False)
def _load(path: str, mtime_ns: int, size: int):
    server.torch_ready()
    from dstab import checkpoints

    return checkpoints.load(path)


def load_bundle(path: Path):
    """A checkpoint (`dstab.checkpoints.Bundle`) loaded once per file version and shared by sessions;
    analyses work on copies."""
    stat = Path(path).stat()
    return _load(str(path), stat.st_mtime_ns, stat.st_size)


@st.cache_data(show_spinner=False)
def _manifest(root: str, mtime_ns: int) -> dict:
    return zooindex.read_manifest(Path(root))


def manifest() -> dict:
    path = zooindex.manifest_path()
    return _manifest(str(path.parent), path.stat().st_mtime_ns)


def zoo_choices(entries: dict) -> dict[str, ModelChoice]:
    root = zooindex.zoo_root()
    out = {}
    for eid, e in sorted(entries.items()):
        files = e["checkpoints"]
        early = root / files["early"]["path"] if "early" in files else None
        out[eid] = ModelChoice(
            eid,
            eid.split("/", 1)[1],
            e["kind"],
            e["dataset"],
            root / files["final"]["path"],
            early,
            files["final"]["sha256"],
            zooindex.collapse_label(e),
        )
    return out


def user_choice(path: Path) -> ModelChoice:
    bundle = load_bundle(path)
    nonfinite = bundle.nonfinite_weights()
    return ModelChoice(
        PATH_PREFIX + str(path),
        f"yours: {path.name}" + (" (NaN/inf weights)" if nonfinite else ""),
        bundle.kind,
        bundle.header.get("dataset", "?"),
        path,
        sha256=bundle.sha256,
        nonfinite=tuple(nonfinite),
    )


def user_choices() -> dict[str, ModelChoice]:
    return st.session_state.setdefault("dstab_user_checkpoints", {})


def zoo_ref_of(path: Path) -> str | None:
    """The zoo entry whose final checkpoint `path` is (a zoo file given by path is that entry, listed once)."""
    try:
        entries = manifest()["entries"]
    except DstabError:
        return None
    root = zooindex.zoo_root().resolve()
    target = Path(path).resolve()
    for eid, e in entries.items():
        if (root / e["checkpoints"]["final"]["path"]).resolve() == target:
            return eid
    return None


def _shown(path: Path, others: list[Path]) -> str:
    """The file name, or with the nearest folder that tells it from files of the same name
    (`run-a/…/step0000100.safetensors` beside run-b's)."""
    same = [o for o in others if o != path and o.name == path.name]
    if not same:
        return path.name
    for depth in range(2, len(path.parts)):
        if all(len(o.parts) < depth or o.parts[-depth] != path.parts[-depth] for o in same):
            return f"{path.parts[-depth]}/{path.name}" if depth == 2 else f"{path.parts[-depth]}/…/{path.name}"
    return str(path)


def _unique_labels() -> None:
    """`yours: NAME` for each user checkpoint, NAME its file name, or with a folder where two share one."""
    choices = user_choices()
    paths = [c.path for c in choices.values()]
    for ref, c in list(choices.items()):
        flag = " (NaN/inf weights)" if c.nonfinite else ""
        choices[ref] = replace(c, label=f"yours: {_shown(c.path, paths)}{flag}")


def _add_user(path: Path) -> tuple[str, str, str]:
    """Add a checkpoint file to its kind's list, once: (its ref, its label, its kind). A zoo entry's final
    file is that entry (not a second item)."""
    eid = zoo_ref_of(path)
    if eid is not None:
        entry = manifest()["entries"][eid]
        return eid, eid, entry["kind"]
    choice = user_choice(path)
    user_choices()[choice.ref] = choice
    _unique_labels()
    if choice.nonfinite:  # it joins the list (it may be worth a look), but named: every analysis of it refuses
        more = f" and {len(choice.nonfinite) - 1} more" if len(choice.nonfinite) > 1 else ""
        st.warning(f"{path.name}: {choice.nonfinite[0]}{more} hold NaN or inf weights; analyses of it refuse.")
    return choice.ref, user_choices()[choice.ref].label, choice.kind


ADDED = "dstab_added"  # the last "added" note (or a link's refusal), shown until the next checkpoint is added


def added(ref: str, label: str, kind: str, how: str) -> None:
    """Note a checkpoint added by path, upload or link (a zoo file is its entry, already listed); the note
    stays in the sidebar across the page's reruns (a computation's end reruns it) until the next one."""
    if ref.startswith(PATH_PREFIX):
        st.session_state[ADDED] = ("success", f"added {label} to the {kind.upper()} list ({how})")
    else:
        st.session_state[ADDED] = (
            "info",
            f"that file is the zoo's {ref}, listed under the dataset {ref.split('/', 1)[0]} ({how})",
        )


def _show_added(where) -> None:
    note = st.session_state.get(ADDED)
    if note is not None:
        getattr(where, note[0])(note[1])


def _adopt_url_paths() -> None:
    """A shared link may name user checkpoints by path: load them (still confined) so that the
    DM/GAN lists offer them before the bound selectboxes read the URL."""
    for slot in ("dm", "gan"):
        ref = st.query_params.get(slot, "")
        if not ref.startswith(PATH_PREFIX) or ref in user_choices():
            continue
        try:
            path = userfiles.confined_path(ref[len(PATH_PREFIX) :])
            kind = load_bundle(path).kind
            if kind != slot:
                raise DstabError(f"{path.name} is a {kind.upper()} checkpoint; choose it as the {kind.upper()}")
            new_ref, label, kind = _add_user(path)
            if new_ref != ref:  # a zoo file named by path: the link opens its zoo entry
                st.query_params[slot] = new_ref
            added(new_ref, label, kind, "from the link")
        except DstabError as exc:
            # kept like an "added" note: the sidebar then publishes its default in the URL, and a rerun
            # (a kept t, a computation's end) would otherwise drop the only word of why the link's model is not there
            st.session_state[ADDED] = ("error", f"The link's {slot.upper()} cannot be used: {exc}")


def _own_checkpoint_form() -> None:
    with st.sidebar.expander("Your own checkpoint"):
        st.caption(
            "A dstab .safetensors checkpoint, or a format an importer knows. It joins the DM or GAN list. "
            f"Uploads up to {userfiles.max_upload_bytes() / 2**20:.0f} MiB."
        )
        text = st.text_input("Path on the server", key="own_path", placeholder="workspace/my-dm.safetensors")
        if st.button("Load path", key="own_path_load") and text:
            try:
                added(*_add_user(userfiles.confined_path(text)), "path")
            except DstabError as exc:
                st.error(str(exc))
        # no `type=` filter: Streamlit checks it on the server before the script runs, so a file of another
        # type sent past the browser's filter replaced the page with its exception; save_upload says it in a line
        suffixes = ", ".join(userfiles.CHECKPOINT_SUFFIXES)
        up = st.file_uploader("or upload", key="own_up", help=f"a checkpoint file: {suffixes}")
        if up is not None:
            try:
                userfiles.require_upload_size(up.name, up.size)  # before reading it into memory
                path = userfiles.save_upload(up.name, up.getvalue())
                known = PATH_PREFIX + str(path) in user_choices()
                ref, label, kind = _add_user(path)
                if not known:  # the uploader keeps its file across reruns: said once
                    added(ref, label, kind, "upload")
            except DstabError as exc:
                st.error(str(exc))


def _pick(kind: str, family: str, zoo_options: dict[str, ModelChoice], inits: list[str], where) -> ModelChoice | None:
    options = {r: c for r, c in zoo_options.items() if c.kind == kind and r.startswith(family + "/")}
    options.update({r: c for r, c in user_choices().items() if c.kind == kind})
    if not options:
        where.caption(f"no {kind.upper()} checkpoint for {family}")
        return None
    # the default is the first run of the kind's init group (`inits`, seed 0 first) that trained: a
    # mode-collapsed one (toy2d/gan-s0) stays listed, labelled, but is never what a page opens on, since
    # comparing with it tests a failed run, not its kind
    inits = [r for r in inits if r in options]
    default = next((r for r in inits if not options[r].collapse), inits[0] if inits else next(iter(options)))

    # the options are the refs themselves, not labels: a bound widget keeps its shown text in the URL,
    # and a zoo id or a path is what a fresh session can resolve; a user's file is shown by its label
    def shown(ref: str) -> str:
        text = ref if options[ref].is_zoo else options[ref].label  # a user's label names NaN/inf weights
        return f"{text} ({options[ref].collapse})" if options[ref].collapse else text

    name = "DM" if kind == "dm" else "GAN"
    ref = urlstate.shared_selectbox(name, list(options), kind, default, where=where, format_func=shown)
    if options[ref].collapse:
        where.warning(f"{ref} is mode-{options[ref].collapse}: comparisons with it test a failed run, not its kind.")
    return options[ref]


def render() -> Selection:
    st.sidebar.header("Models")
    try:
        man = manifest()
    except DstabError as exc:
        st.sidebar.error(str(exc))
        man = {"entries": {}}
    zoo_options = zoo_choices(man["entries"])
    families = sorted({eid.split("/", 1)[0] for eid in zoo_options}) or ["(no zoo)"]
    family = urlstate.shared_selectbox("Dataset", families, "data", "digits", where=st.sidebar)
    _adopt_url_paths()
    pickers = st.sidebar.container()  # drawn above the form, filled after it: a new upload is listed at once
    _own_checkpoint_form()
    inits = {k: zooindex.group_ids(man["entries"], family, f"{k}-init") for k in ("dm", "gan")}
    dm = _pick("dm", family, zoo_options, inits["dm"], pickers)
    gan = _pick("gan", family, zoo_options, inits["gan"], pickers)
    _show_added(pickers)
    figures.toggle(st.sidebar)
    st.sidebar.caption(f"Device: {server.device_label()}")
    return Selection(family, dm, gan, man)


def empty_selection() -> Selection:
    """What pages get when the sidebar itself failed: no models (each page says what to pick)."""
    return Selection("(no zoo)", None, None, {"entries": {}})


def publish(selection: Selection) -> None:
    """The sidebar's choice into the URL, so that a copied link opens the same models."""
    refs = {"dm": selection.dm.ref if selection.dm else None, "gan": selection.gan.ref if selection.gan else None}
    urlstate.publish({"data": selection.family, **refs})


def current() -> Selection:
    """The selection app.py's sidebar made on this run, which pages call for.

    Streamlit runs a page file directly, without app.py, on a server's first
    run if a `pages/` folder exists (its multipage v1 mode, with its own page
    menu). `server.configure()` has switched that mode off by now, so one
    rerun goes through app.py; a page started some other way (e.g.
    `streamlit run pages/x.py`) draws the sidebar itself."""
    st.session_state["dstab_render"] = st.session_state.get("dstab_render", 0) + 1  # a new run: new lookups
    selection = st.session_state.pop("dstab_selection", None)
    if selection is not None:
        return selection
    if not st.session_state.get("dstab_rerun_once"):
        st.session_state["dstab_rerun_once"] = True
        st.rerun()
    # st.Page names a page by its file's stem, which is this caller's
    urlstate.on_page(Path(sys._getframe(1).f_code.co_filename).stem)
    selection = render()
    publish(selection)
    return selection
