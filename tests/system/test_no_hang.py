"""No test can wait forever on a child process: every ``subprocess.run``-style call has a ``timeout``, every
``.wait()``/``.communicate()`` has one, and no test reads a child's pipe directly (a grandchild that inherited the
pipe keeps ``read()`` blocked after the child is gone; ``communicate(timeout=...)`` or a file instead).

The scan reads the source of every file under ``tests/``, so a new call without a timeout fails here, by line."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]  # tests/, every tier
RUNNERS = {"run", "call", "check_call", "check_output"}  # subprocess functions that wait for the child
WAITS = {"wait", "communicate"}  # Popen (and psutil.Process) methods that block until the child ends
READS = {"read", "readline", "readlines"}


def _has_timeout(call: ast.Call) -> bool:
    return any(k.arg == "timeout" for k in call.keywords)


def _is_pipe(node: ast.AST) -> bool:
    """``x.stdout`` or ``x.stderr`` for any ``x`` but ``sys`` (a child's pipe, not our own streams)."""
    return isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr") and not (
        isinstance(node.value, ast.Name) and node.value.id == "sys")


def _call_hazard(call: ast.Call) -> str | None:
    f = call.func
    if not isinstance(f, ast.Attribute):
        return None
    if isinstance(f.value, ast.Name) and f.value.id == "subprocess" and f.attr in RUNNERS and not _has_timeout(call):
        return f"subprocess.{f.attr}() without timeout="
    if f.attr in WAITS and not call.args and not _has_timeout(call):
        return f".{f.attr}() without a timeout"
    if f.attr == "wait_procs" and len(call.args) < 2 and not _has_timeout(call):
        return "psutil.wait_procs() without a timeout"
    if f.attr in READS and _is_pipe(f.value):
        return f"a child's pipe read with .{f.attr}() (no timeout possible: use communicate(timeout=) or a file)"
    return None


def hazards(source: str, name: str = "<source>") -> list[str]:
    """``name:line: problem`` for every place in ``source`` that can block on a child process without a limit."""
    out = []
    for node in ast.walk(ast.parse(source, name)):
        problem = None
        if isinstance(node, ast.Call):
            problem = _call_hazard(node)
        elif isinstance(node, (ast.For, ast.comprehension)) and _is_pipe(node.iter):
            problem = "iterates over a child's pipe (no timeout possible)"
        if problem:
            out.append((node.lineno, f"{name}:{node.lineno}: {problem}"))
    return [text for _, text in sorted(out)]


def test_the_scan_finds_each_kind_of_unbounded_wait():
    """The scanner itself can fail: each hazard in a sample is reported, and the bounded forms are not."""
    bad = ("import subprocess, psutil\n"
           "subprocess.run(['x'])\n"
           "subprocess.check_output(['x'])\n"
           "p = subprocess.Popen(['x'])\n"
           "p.wait()\n"
           "p.communicate()\n"
           "p.stdout.readline()\n"
           "p.stderr.read()\n"
           "psutil.wait_procs([p])\n"
           "for line in p.stdout:\n    pass\n")
    found = hazards(bad)
    assert [int(h.split(":")[1]) for h in found] == [2, 3, 5, 6, 7, 8, 9, 10], found
    good = ("import subprocess, psutil, sys\n"
            "subprocess.run(['x'], timeout=5)\n"
            "p = subprocess.Popen(['x'])\n"
            "p.wait(timeout=5)\n"
            "p.wait(5)\n"
            "p.communicate(timeout=5)\n"
            "psutil.wait_procs([p], timeout=3)\n"
            "sys.stdout.readline\n"
            "r = subprocess.run(['x'], timeout=5, capture_output=True, text=True)\n"
            "r.stdout.strip()\n")
    assert hazards(good) == []


def test_no_test_waits_on_a_child_without_a_limit():
    """Every subprocess call in the suite is bounded: a loaded machine makes a test fail, never hang."""
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        found += hazards(path.read_text(), str(path.relative_to(TESTS.parent)))
    assert found == [], "\n".join(found)
