"""Nothing new means nothing done: ``miar collect`` with unchanged inputs computes and writes nothing, tables are
rewritten only when their content changes, a finished tuning study starts no cluster, and the book's results
fingerprint follows file contents, not modification times (a fresh clone or an identical rewrite re-executes no page)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from faultkit import TINY, main, snapshot

from miar import config as C
from miar.atomic import write_together
from miar.report.sphinx import results_fingerprint
from miar.study import freshness
from miar.train import fit


@pytest.fixture(scope="module")
def record(tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("noop") / "results"
    for seed in (1, 2):
        fit(C.load("smoke", overrides=TINY, seed=seed), results / "runs" / "smoke" / f"s{seed}")
    return results


def mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*")) if p.is_file()}


def test_write_together_leaves_files_that_would_not_change(tmp_path):
    same, other = tmp_path / "same.csv", tmp_path / "other.csv"
    same.write_text("a,b\n1,2\n")
    other.write_text("old\n")
    os.utime(same, ns=(1, 1))
    assert write_together({same: "a,b\n1,2\n", other: "new\n", tmp_path / "fresh.csv": b"x"}) == [
        other, tmp_path / "fresh.csv"]
    assert same.stat().st_mtime_ns == 1 and other.read_text() == "new\n"


def test_a_second_collect_with_nothing_new_writes_nothing(record, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(record, results)
    rc, out, err = main(["collect", "--results", results])
    assert rc == 0, err
    assert (results / freshness.STAMP).is_file() and freshness.up_to_date(results)
    before, stamps = snapshot(results), mtimes(results)
    rc, out, err = main(["collect", "--results", results])
    assert rc == 0 and "up to date" in out, out + err
    assert snapshot(results) == before and mtimes(results) == stamps


def test_collect_recomputes_when_an_input_or_output_changed(record, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(record, results)
    assert main(["collect", "--results", results])[0] == 0
    summary = (results / "tables" / "summary.csv").read_text()
    (results / "tables" / "summary.csv").write_text("edited\n")  # an output edited by hand
    rc, out, _ = main(["collect", "--results", results])
    assert rc == 0 and "up to date" not in out and (results / "tables" / "summary.csv").read_text() == summary
    fit(C.load("smoke", overrides=TINY, seed=3), results / "runs" / "smoke" / "s3")  # a new record
    assert not freshness.up_to_date(results)
    rc, out, err = main(["collect", "--results", results])
    assert rc == 0 and "up to date" not in out, out + err
    assert ",s3," in (results / "tables" / "runs.csv").read_text()
    rc, out, _ = main(["collect", "--results", results, "--force"])
    assert rc == 0 and "up to date" not in out


def test_a_finished_tuning_study_starts_no_cluster(tmp_path, monkeypatch):
    from miar.study import engine
    sets = sum((["--set", o] for o in TINY), [])
    argv = ["tune", "smoke", "--trials", "1", "--results", tmp_path / "tune", "--seeds", "1", *sets]
    monkeypatch.chdir(tmp_path)
    rc, _, err = main(argv)
    assert rc == 0, err

    def no_cluster(*a, **kw):
        raise AssertionError("a cluster was started for a finished study")

    monkeypatch.setattr(engine, "connect", no_cluster)
    rc, out, err = main(argv)
    assert rc == 0 and "nothing to run" in out, out + err
    assert main(["tune", "smoke", "--results", tmp_path / "tune", "--report"])[0] == 0
    stamps = mtimes(tmp_path / "tune")
    assert main(["tune", "smoke", "--results", tmp_path / "tune", "--report"])[0] == 0
    assert mtimes(tmp_path / "tune") == stamps  # the same report rewrites nothing


def test_the_book_fingerprint_follows_contents_not_mtimes(tmp_path):
    (tmp_path / "tables").mkdir()
    table = tmp_path / "tables" / "summary.csv"
    table.write_text("mae\n0.8\n")
    (tmp_path / ".sweep.lock").write_text("pid 1")
    first = results_fingerprint(tmp_path)
    os.utime(table, ns=(5, 5))
    (tmp_path / ".sweep.lock").write_text("pid 2")  # dot files (locks, staging) never count
    assert results_fingerprint(tmp_path) == first
    table.write_text("mae\n0.7\n")
    assert results_fingerprint(tmp_path) != first
