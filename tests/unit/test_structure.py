"""The package's structure: no import cycle between ``miar`` modules, counting the imports placed inside
functions (an import moved into a function hides a cycle from Python, not from this test). Imports under
``if TYPE_CHECKING:`` are left out: they never run."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "miar"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_nodes(tree: ast.AST):
    """Every node that runs on import or call: all of them but the bodies of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    """module -> the ``miar`` modules it imports anywhere in its file (module level or inside functions)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in runtime_nodes(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("miar"):
                deps |= {c for c in [node.module, *(f"{node.module}.{a.name}" for a in node.names)] if c in modules}
            elif isinstance(node, ast.ImportFrom) and node.level > 0:
                raise AssertionError(f"{path}: relative import (the package uses absolute imports)")
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name in modules}
        graph[name] = deps - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on_stack.discard(comp[-1])
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_miar_modules():
    graph = import_graph()
    assert {"miar.train", "miar.model.build", "miar.study.executor", "miar.bench.cli"} <= set(graph)
    assert "miar.data.validate" in graph["miar.data.check"]
    assert "miar.sweep_records" in graph["miar.bench.cli"]  # an import inside a function counts too
    assert "miar.config" not in graph["miar.config_checks"]  # a TYPE_CHECKING import does not
    assert cycles(graph) == []


FORBIDDEN = {  # (importer, imported) packages: the report reads what was planned from miar.declared, not the runner;
    ("miar.report", "miar.study"),  # the benchmark reads the sweep records from miar.sweep_records, not the book layer
    ("miar.bench", "miar.report"),
}


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def layering_violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import from one wing into a wing it must not reach (:data:`FORBIDDEN`), as "importer -> imported"."""
    return sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps for low, high in FORBIDDEN
                  if _within(m, low) and _within(d, high))


def test_the_layering_check_finds_a_forbidden_import():
    """A report module that imports the runner, or a benchmark module that imports the report, is named."""
    graph = {"miar.report.tables": {"miar.study.plan", "miar.declared"}, "miar.bench.cli": {"miar.report"},
             "miar.study.plan": {"miar.declared"}, "miar.reporting": {"miar.study"}}
    assert layering_violations(graph) == ["miar.bench.cli -> miar.report", "miar.report.tables -> miar.study.plan"]


def test_the_report_does_not_import_the_runner_nor_the_benchmark_the_report():
    """Layers by role: what both wings need (the declared sweeps, spaces and tuning choices; the sweep records)
    lives below both, in miar.declared and miar.sweep_records."""
    assert layering_violations(import_graph()) == []


def test_notebooks_do_not_import_the_runner():
    """The notebooks import the parameters check and the analysis helpers, never the sweep executor."""
    notebooks = sorted((PACKAGE.parent / "notebooks").glob("*.ipynb"))
    assert {"train.ipynb", "alignment.ipynb", "data.ipynb"} <= {nb.name for nb in notebooks}
    for nb in notebooks:
        text = nb.read_text()
        assert "check_parameters" not in text or "from miar.study.params import check_parameters" in text, nb.name
        for runner in ("executor", "plan", "lock", "record", "papermill_engine"):
            assert f"miar.study.{runner}" not in text, (nb.name, runner)


def test_notebooks_ship_in_the_package():
    """In a checkout (and an editable install) the packaged notebooks are the top-level ``notebooks/``."""
    from miar.study.plan import notebooks_dir

    assert notebooks_dir().resolve() == (PACKAGE.parent / "notebooks").resolve()
    assert (notebooks_dir() / "train.ipynb").is_file()


WARN_MODULE_LINES, WARN_FUNCTION_LINES = 300, 40  # budgets: past them, split by role when the module next grows
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 60  # limits: past them, split now
REASON = "# long:"  # e.g. "def table(...):  # long: one row per figure reads better in one place"


def _lengths():
    """(what, lines, budget, limit) of every module and function of the package without a "# long:" reason."""
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text().splitlines()
        rel = path.relative_to(PACKAGE.parent)
        if REASON not in lines[0]:
            yield f"{rel}: {len(lines)} lines", len(lines), WARN_MODULE_LINES, MAX_MODULE_LINES
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and REASON not in lines[node.lineno - 1]:
                n = node.end_lineno - node.lineno + 1
                yield f"{rel}:{node.lineno} {node.name}: {n} lines", n, WARN_FUNCTION_LINES, MAX_FUNCTION_LINES


def test_small_modules_and_functions():
    """Size limits are budgets, not targets: a module past 300 lines or a function past 40 is reported (a warning:
    split it by role when it next grows); past 400 or 60 it fails, unless a "# long: <reason>" comment says why
    (on the module's first line, or on the function's ``def`` line). Never compress code to fit."""
    import warnings
    over_budget = [what for what, n, budget, _ in _lengths() if n > budget]
    if over_budget:
        warnings.warn("over budget (split by role when they next grow): " + "; ".join(over_budget), stacklevel=1)
    too_long = [what for what, n, _, limit in _lengths() if n > limit]
    assert too_long == [], "split these by role, or say why longer reads better with a '# long: ...' comment"


def test_the_size_check_sees_the_package():
    found = list(_lengths())
    assert len(found) > 500 and any(n > 100 for _, n, _, _ in found)


TESTS = PACKAGE.parent / "tests"
TIERS = ("unit", "integration", "system")
NOT_IN_UNIT = ("subprocess", "papermill", "nbclient", "nbval", "dask", "distributed")  # processes, notebooks, clusters


def heavy_imports(source: str, name: str = "<test>") -> list[str]:
    """The modules of :data:`NOT_IN_UNIT` that ``source`` imports anywhere (module level, inside a function, or
    through ``pytest.importorskip``)."""
    found = set()
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "importorskip" and node.args:
            names = [getattr(node.args[0], "value", "")]  # pytest.importorskip("papermill")
        else:
            continue
        found |= {n for n in names if isinstance(n, str) and n.split(".")[0] in NOT_IN_UNIT}
    return sorted(found)


def test_the_tier_check_finds_a_subprocess_a_notebook_or_a_cluster():
    """An import of subprocess, papermill or dask, at module level or inside a test, is found."""
    src = "import os\nimport subprocess\n\ndef test_x():\n    from dask.distributed import Client\n"
    assert heavy_imports(src) == ["dask.distributed", "subprocess"]
    assert heavy_imports('pm = pytest.importorskip("papermill")\n') == ["papermill"]
    assert heavy_imports("import json\nfrom miar import config\n") == []


def test_tests_live_in_tiers_and_the_unit_tier_starts_no_process_notebook_or_cluster():
    """Every test file is in tests/unit, tests/integration or tests/system; a unit test file imports no
    subprocess, papermill or Dask (those tests belong to the integration or system tier)."""
    assert sorted(p.name for p in TESTS.glob("test_*.py")) == []
    assert all(any((TESTS / t).glob("test_*.py")) for t in TIERS)
    heavy = {p.name: found for p in sorted((TESTS / "unit").glob("*.py"))
             if (found := heavy_imports(p.read_text(), str(p)))}
    assert heavy == {}, "move these to tests/integration or tests/system"
