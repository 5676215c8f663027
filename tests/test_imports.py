"""The import structure of dstab: the layer order of ARCHITECTURE.md, no cycles, and a CLI that
imports only what the command needs.

The graph is read statically (ast) from every `import` statement in dstab/,
including those inside functions: a lazy import that closes a cycle is a
cycle all the same (it only moves the failure to the first call).
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dstab import cli
from dstab.commands import COMMANDS

PACKAGE = Path(__file__).resolve().parents[1] / "dstab"
ARCHITECTURE = PACKAGE.parent / "ARCHITECTURE.md"
OUTSIDE = ("pages/", "app.py", "dashboard/")  # the app layer: above dstab, never imported by it

# import edges a pending change still has to cut (none: the precompute table is static in dstab.zooresults)
PENDING: set[tuple[str, str]] = set()


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _known(name: str, mods) -> str | None:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """module -> the dstab modules it imports (a `from pkg import name` counts pkg.name when it is a module)."""
    mods = modules()
    graph = {}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {_known(a.name, mods) for a in node.names if a.name.split(".")[0] == "dstab"}
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                full = ".".join(base + ([node.module] if node.module else []))
                if full.split(".")[0] != "dstab":
                    continue
                for a in node.names:
                    targets.add(f"{full}.{a.name}" if f"{full}.{a.name}" in mods else _known(full, mods))
        graph[mod] = {t for t in targets if t and t != mod}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt, path + [nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle_and_passes_a_tree():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_relative_lazy_and_package_imports():
    graph = import_graph()
    assert "dstab.importers.openai" in graph["dstab.importers"]  # from . import openai
    assert "dstab.bundle" in graph["dstab.importers.dcgan"]  # from ..bundle import ...
    assert "dstab.device" in graph["dstab.cli"]  # imported inside main()
    assert "dstab.checkpoints" not in graph["dstab.importers.openai"]


def test_dstab_imports_no_cycle():
    graph = import_graph()
    assert cycle(graph) is None, " -> ".join(cycle(graph))


def layers(text: str | None = None) -> list[tuple[str, list[str]]]:
    """The rows of ARCHITECTURE.md's layer table, top first: (layer, its members as written)."""
    text = ARCHITECTURE.read_text() if text is None else text
    section = text.split("\n## Layers\n", 1)[1].splitlines()
    first = next(i for i, line in enumerate(section) if line.startswith("|"))
    table = section[first : next((i for i, line in enumerate(section) if i > first and not line.startswith("|")), None)]
    rows = []
    for line in table:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0] not in ("layer", "") and not set(cells[0]) <= set("-"):
            rows.append((cells[0], re.findall(r"`([^`]+)`", cells[1])))
    return rows


def layer_index(rows: list[tuple[str, list[str]]]) -> dict[str, int]:
    """dstab module or package prefix -> its row (0 = top); `x/` names a package and all it holds."""
    index = {}
    for i, (_, members) in enumerate(rows):
        for m in members:
            if m in OUTSIDE:
                continue
            name = "dstab" if m == "__init__" else "dstab." + m.rstrip("/")
            assert name not in index, f"{m} is in two rows of the layer table"
            index[name] = i
    return index


def layer_of(module: str, index: dict[str, int]) -> int | None:
    name = module
    while name:
        if name in index:
            return index[name]
        name = name.rpartition(".")[0]
    return None


def upward_imports(graph: dict[str, set[str]], index: dict[str, int]) -> list[str]:
    """Every import that goes up the layer table ('a -> b' where b's row is above a's)."""
    return [
        f"{a} -> {b}"
        for a, targets in sorted(graph.items())
        for b in sorted(targets)
        if layer_of(b, index) < layer_of(a, index)
    ]


def test_the_layer_check_finds_an_upward_import_and_passes_a_downward_one():
    text = "# doc\n## Layers\n| layer | modules | what |\n|---|---|---|\n| top | `a/` `b` | x |\n| bottom | `c` | y |\n"
    rows = layers(text)
    assert rows == [("top", ["a/", "b"]), ("bottom", ["c"])]
    index = layer_index(rows)
    assert layer_of("dstab.a.deep.module", index) == 0 and layer_of("dstab.c", index) == 1
    assert upward_imports({"dstab.a.x": {"dstab.c", "dstab.b"}, "dstab.c": set()}, index) == []
    assert upward_imports({"dstab.c": {"dstab.a.x"}}, index) == ["dstab.c -> dstab.a.x"]


def test_every_module_has_one_layer_in_architecture_md():
    index = layer_index(layers())
    assert [name for name, _ in layers()][:2] == ["app", "commands"] and len(layers()) >= 8
    assert sorted(m for m in modules() if layer_of(m, index) is None) == []


def test_imports_follow_the_layer_order_of_architecture_md():
    """The document's first claim: each layer imports only its own and the layers below it."""
    assert upward_imports(import_graph(), layer_index(layers())) == []


def test_dstab_never_imports_the_app_layer():
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            assert not {n.split(".")[0] for n in names} & {"dashboard", "pages", "app", "streamlit"}, path


def module_map(text: str | None = None) -> dict[str, str]:
    """ARCHITECTURE.md's '## Modules' table: module path -> its one concept."""
    text = ARCHITECTURE.read_text() if text is None else text
    section = text.split("\n## Modules\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        m = re.fullmatch(r"\| `([^`]+)` \| (.*) \|", line.strip())
        if m:
            rows[m.group(1)] = m.group(2).strip()
    return rows


def module_files() -> set[str]:
    repo = PACKAGE.parent
    found = {"app.py"} | {str(p.relative_to(repo)) for d in ("dstab", "dashboard") for p in (repo / d).rglob("*.py")}
    return found | {str(p.relative_to(repo)) for p in (repo / "pages").glob("*.py")}


def test_the_module_map_parser_reads_rows_and_skips_the_rest():
    text = (
        "# doc\n## Modules\nprose\n| module | concept |\n|---|---|\n| `a.py` | one thing |\n\n## Next\n| `b.py` | x |\n"
    )
    assert module_map(text) == {"a.py": "one thing"}


def test_architecture_md_names_every_module_with_its_one_concept():
    """A module added without a row (or a row left for a module that is gone) fails here."""
    rows = module_map()
    assert sorted(module_files() - set(rows)) == [], "modules without a row in ARCHITECTURE.md's ## Modules"
    assert sorted(set(rows) - module_files()) == [], "rows in ARCHITECTURE.md's ## Modules for no module"
    assert all(concept and len(concept) <= 160 for concept in rows.values())  # one concept, not an essay


# `python -m dstab ARGS` in a fresh interpreter, then the names of every module it imported
# (sys.modules: `python -X importtime` misses modules loaded through importlib.import_module)
_RUN = """import sys
from dstab.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
print("MODULES", *sorted(sys.modules), file=sys.stderr)
sys.exit(code)
"""


def _fresh(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    r = subprocess.run([sys.executable, "-c", _RUN, *args], capture_output=True, text=True, timeout=300)
    line = next((x for x in r.stderr.splitlines() if x.startswith("MODULES ")), "")
    return r, set(line.split()[1:])


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_no_torch_and_no_command_module(flag):
    r, imported = _fresh(flag)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "dstab.cli" in imported and "torch" not in imported and "numpy" not in imported
    heavy = ("dstab.analysis", "dstab.training", "dstab.runs", "dstab.commands.")
    assert not {m for m in imported if m.startswith(heavy)}
    if flag == "--help":
        assert all(name in r.stdout for name in COMMANDS)
    else:
        assert r.stdout.strip().startswith("dstab ")


def test_a_command_imports_only_its_own_module():
    r, imported = _fresh("runs", "--help")
    assert r.returncode == 0 and "Background training runs" in r.stdout
    assert "dstab.commands.runs" in imported
    assert not {m for m in imported if m.startswith("dstab.commands.") and m != "dstab.commands.runs"}


def _registered(module: str) -> dict[str, str]:
    sub = argparse.ArgumentParser().add_subparsers()
    __import__(f"dstab.commands.{module}", fromlist=["register"]).register(sub)
    return {a.dest: a.help for a in sub._choices_actions}


def test_the_static_table_is_what_each_module_registers():
    for module in sorted({c.module for c in COMMANDS.values()}):
        table = {name: c.help for name, c in COMMANDS.items() if c.module == module}
        assert _registered(module) == table, module


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_parses_its_own_help(command, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.build_parser(command).parse_args([command, "--help"])
    assert stop.value.code == 0 and capsys.readouterr().out.startswith(f"usage: python -m dstab {command} ")


FAKE_TRAINER = Path(__file__).resolve().parent / "fake_trainer.py"


def test_runs_list_imports_no_torch_and_launches_check_with_the_trainer(tmp_path, monkeypatch):
    """`runs list` (the page's and the CLI's read path) imports no PyTorch. `runs start`, `sweep` and its
    --dry-run check every option before anything is queued by building the trainer as the run will
    (issue 27: options the run refused used to pass them); the runs themselves are a stand-in trainer."""
    monkeypatch.setenv("DSTAB_TRAIN_COMMAND", f"{sys.executable} {FAKE_TRAINER}")
    monkeypatch.setenv("FAKE_STEP_S", "0.01")
    monkeypatch.setenv("DSTAB_MAX_RUNS_PER_DEVICE", "1")
    root = ["--root", str(tmp_path)]
    calls = [
        ["runs", *root, "start", "one", "--preset", "mdlrc-clts", "--set", "lr=2e-3", "--device", "cpu"],
        ["sweep", *root, "--variants", "baseline,md", "--seeds", "2", "--set", "lr=1e-3,2e-3", "--dry-run"],
        ["sweep", *root, "--variants", "baseline,md", "--seeds", "2", "--group", "g", "--device", "cpu"],
    ]
    try:
        for argv in calls:
            r, imported = _fresh(*argv)
            assert r.returncode == 0, (argv, r.stderr[-2000:])
            assert "dstab.training.trainer" in imported, argv  # checked by the run's own rule
        r, imported = _fresh("runs", *root, "list")
        assert r.returncode == 0 and "5 runs in" in r.stdout and "torch" not in imported
        r, imported = _fresh("runs", *root, "start", "bad", "--preset", "baseline", "--set", "timesteps.name=x")
        assert r.returncode == 2 and "unknown timestep sampler 'x'" in r.stderr
    finally:
        from dstab import runs

        for st in runs.list_runs(tmp_path):
            if st.active:
                runs.stop(st.name, tmp_path)


def test_the_torch_free_device_rule_agrees_with_torch():
    import torch

    from dstab import device

    assert device.concrete_name("cpu") == "cpu"
    assert device.concrete_name("auto") == ("cuda:0" if torch.cuda.is_available() else "cpu")
    if device.cuda_ruled_out():  # never says "no CUDA" where PyTorch finds one
        assert not torch.cuda.is_available()
