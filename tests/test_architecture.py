"""The shape of the code: no import cycles, no Hydra internals, documented keys."""

import ast
import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import REPO, compose_config

PACKAGE = REPO / "mnist_lab"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The mnist_lab modules ``path`` imports anywhere (in functions too)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}  # `from . import x`
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imported_modules(p, modules) for p in paths}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt, path + [nxt])):
                return cycle
        state[node] = 2
        return None

    return next((c for n in sorted(graph) if n not in state and (c := visit(n, [n]))), None)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_mnist_lab_has_no_import_cycle():
    graph = import_graph()
    assert "mnist_lab.config.parts" in graph["mnist_lab.config.settings"]  # the graph is real
    assert "mnist_lab.data.datasets" in graph["mnist_lab.config.settings"]  # in functions too
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_no_hydra_internals():
    for path in [*PACKAGE.rglob("*.py"), *(REPO / "hydra_plugins").rglob("*.py"), REPO / "run.py"]:
        assert "hydra._internal" not in path.read_text(), path


def test_the_folders_keep_their_layers():
    """record/ imports no training, sweep or cluster code; the library half of
    evaluation imports no command-line code; nothing below the commands imports them."""
    graph = import_graph()
    commands = {f"mnist_lab.{c}" for c in ("predict", "evaluate", "compare")} | {
        "mnist_lab.app.command"}
    for module, imports in graph.items():
        if module.startswith("mnist_lab.record"):
            below = ("mnist_lab.training", "mnist_lab.sweeps", "mnist_lab.config")
            assert not {m for m in imports if m.startswith(below)}, module
        if module not in commands and not module.startswith("mnist_lab.app"):
            assert not imports & commands, (module, imports & commands)
    for path in (PACKAGE / "training").rglob("*.py"):
        assert "argparse" not in path.read_text(), path


GROUPS = ("data", "model", "optimizer", "scheduler", "logger", "experiment")


def documented_keys() -> dict[str, str]:
    """docs/configuration.md's key table: key -> default, as written (one key per row)."""
    text = (REPO / "docs" / "configuration.md").read_text()
    table = text.split("| key | default | meaning |", 1)[1].split("\n\n", 1)[0]
    rows = [r.split("|")[1:3] for r in table.strip().splitlines()[1:]]
    return {re.findall(r"`([^`]+)`", k)[0]: d.strip().strip("`") for k, d in rows}


def flat(node, prefix=""):
    for key, value in node.items():
        if isinstance(value, dict) and value:
            yield from flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def same_value(written: str, value) -> bool:
    """The table's ``written`` default shows ``value`` (numbers by value, lists without spaces)."""
    shown = "null" if value is None else str(value)
    try:
        return float(written) == float(shown)
    except ValueError:
        return written.replace(" ", "").lower() == shown.replace(" ", "").lower()


def test_the_key_table_matches_the_schemas():
    """Every key of the composed defaults (and of the TensorBoard tracker) is in
    docs/configuration.md's table with its default, and back."""
    hydra = compose_config(return_hydra_config=True).hydra
    defaults = dict(flat(OmegaConf.to_container(compose_config(["logger=[wandb,tensorboard]"]))))
    documented = documented_keys()
    assert sorted(set(defaults) - set(documented)) == [], "keys missing from the table"
    for key, written in documented.items():
        if key in GROUPS:  # a config group: its default option
            assert same_value(written, hydra.runtime.choices.get(key)), (key, written)
        else:
            assert key in defaults, f"the table documents {key}, which the config does not have"
            assert same_value(written, defaults[key]), (key, written, defaults[key])


def test_a_preset_sets_any_key_seed_and_hydra_included(tmp_path):
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "seven.yaml").write_text(
        "# @package _global_\nseed: 7\nhydra:\n  job:\n    name: seven\n")
    cfg = compose_config(["experiment=seven", f"hydra.searchpath=[file://{tmp_path}]"],
                         return_hydra_config=True)
    assert cfg.seed == 7 and cfg.hydra.job.name == "seven"


@pytest.mark.parametrize("sweeper,target", [
    (None, "hydra_plugins.mnist_lab_sweepers.grid.GridSweeper"),
    ("basic", "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"),
])
def test_grid_is_mnist_labs_sweeper_and_basic_is_hydras(sweeper, target):
    overrides = [f"hydra/sweeper={sweeper}"] if sweeper else []
    assert compose_config(overrides, return_hydra_config=True).hydra.sweeper._target_ == target
    assert re.search(r"- sweeper\b", (REPO / "conf" / "config.yaml").read_text())
