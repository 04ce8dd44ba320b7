"""Helpers for the fault-injection tests (tests/*/test_faults_*.py): run the CLI, check the one-line error,
and prove that nothing was written (a snapshot of a directory tree before and after)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

from miar import cli

REPO = Path(__file__).resolve().parents[1]
TINY = ["train.epochs=1", "data.synthetic.n_train=64", "data.synthetic.n_valid=32", "data.synthetic.n_test=32",
        "train.progress=false"]


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` (``root`` itself included, if it exists): sha256 of files, ``dir`` for folders."""
    root = Path(root)
    if not root.exists():
        return {}
    out = {".": "dir"}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def main(argv: list[str]) -> tuple[int, str, str]:
    """``miar ARGV`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def env(**extra) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


def run(argv: list, cwd: Path, **extra_env) -> subprocess.CompletedProcess:
    """``python -m miar.cli ARGV`` in a subprocess."""
    return subprocess.run([sys.executable, "-m", "miar.cli", *map(str, argv)], cwd=cwd, env=env(**extra_env),
                          capture_output=True, text=True, timeout=300)


def one_line(rc: int, err: str, *needles: str) -> str:
    """Assert exit 2 and exactly one line on stderr, ``error: ...``, containing every needle; return it."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, f"exit {rc}, stderr: {err[-2000:]}"
    assert "Traceback" not in err and len(lines) == 1, f"not one line: {err[-2000:]}"
    assert lines[0].startswith("error: "), lines[0]
    for n in needles:
        assert str(n) in lines[0], f"{n!r} not in {lines[0]!r}"
    return lines[0]
