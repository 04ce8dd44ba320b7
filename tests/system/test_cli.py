"""The command line: one-line errors with exit code 2 and no traceback; train writes a record."""

import argparse
import pickle
import subprocess
import sys

import pytest

from miar.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "miar.cli", *args], capture_output=True, text=True, timeout=300)


def test_train_smoke_cli(tmp_path, capsys):
    rc = main(["train", "smoke", "--seed", "3", "--set", "train.epochs=1", "--set", "train.progress=false",
               "--set", "data.synthetic.n_train=64", "--run-dir", str(tmp_path / "r")])
    assert rc == 0
    assert (tmp_path / "r" / "metrics.json").is_file()
    assert "smoke seed 3" in capsys.readouterr().out


def test_bad_config_is_one_line_exit_2(tmp_path):
    r = run("train", "smoke", "--set", "model.nope=1", "--run-dir", str(tmp_path / "r"))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "unknown config key 'model.nope'" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "r").exists()


def test_data_check_garbage_file(tmp_path):
    bad = tmp_path / "garbage.pkl"
    bad.write_bytes(b"\x80\x04not really a pickle")
    r = run("data", "check", str(bad))
    assert r.returncode == 2 and "garbage.pkl" in r.stderr and "Traceback" not in r.stderr


def test_data_check_refuses_code(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (__import__("os").system, (f"touch {marker}",))

    p = tmp_path / "evil.pkl"
    p.write_bytes(pickle.dumps({"train": Evil()}))
    r = run("data", "check", str(p))
    assert r.returncode == 2 and "refused" in r.stderr and not marker.exists()


@pytest.mark.realdata
def test_data_check_real_mosi(mosi_root):
    r = run("data", "check", str(mosi_root / "CMU-MOSI"))
    assert r.returncode == 0, r.stderr
    assert "752" in r.stdout


def every_action(p):
    """(command path, action) for every option and argument of ``p`` and its subcommands."""
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from ((f"{name} {where}", a) for where, a in every_action(sub))
        elif not isinstance(action, argparse._HelpAction):
            yield "", action


def test_every_option_has_plain_help():
    from miar.bench.cli import parser as bench_parser
    from miar.cli import parser

    for p in (parser(), bench_parser()):
        for where, action in every_action(p):
            assert action.help, f"{p.prog} {where}{action.dest}: no help text"
            assert not any(m in action.help for m in ("``", ":mod:", ":func:", ":class:")), action.help
        assert "``" not in (p.description or "")


def test_version_and_list(capsys):
    import miar

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"miar {miar.__version__}"
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    kinds = {ln.split()[0] for ln in lines}
    names = [ln.split()[1] for ln in lines]
    assert kinds == {"experiment", "sweep"} and {"smoke", "mosi_std_miar", "primary", "ablations"} <= set(names)
    assert "margins" not in names and "comparisons" not in names
    assert all(len(ln.split(None, 2)) == 3 for ln in lines), "every line has a description"
