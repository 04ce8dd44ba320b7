"""The command line: one-line errors with exit code 2 and no traceback; train writes a record."""

import pickle
import subprocess
import sys

from miar.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "miar.cli", *args], capture_output=True, text=True)


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


def test_data_check_real_mosi(mosi_root):
    r = run("data", "check", str(mosi_root / "CMU-MOSI"))
    assert r.returncode == 0, r.stderr
    assert "752" in r.stdout
