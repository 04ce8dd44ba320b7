"""A tuning study's storage on a database server is checked before any work starts: a closed port, a host that
does not resolve, a malformed URL or a driver that is not installed is one line naming ``--storage``, exit 2,
and nothing written (no results folder, lock or database); a password in the URL is never shown."""

import importlib.util
import socket

import pytest
from cluster import free_port
from faultkit import main, one_line, snapshot

CLOSED = "127.0.0.1:{closed}"  # a port nobody listens on
CASES = {  # --storage URL -> a fragment of the one line
    "postgresql, closed port": ("postgresql://u@" + CLOSED + "/x", "cannot reach the database server"),
    "mysql, closed port": ("mysql://u@" + CLOSED + "/x", "cannot reach the database server"),
    "mysql+pymysql, closed port": ("mysql+pymysql://u@" + CLOSED + "/x", "cannot reach the database server"),
    "postgresql, default port of a host that does not resolve": ("postgresql://u@[bad/x", "cannot reach"),
    "port out of range": ("postgresql://u@127.0.0.1:99999/x", "port 99999"),
    "port not a number": ("postgresql://u@127.0.0.1:notaport/x", "not an RDB URL"),
    "no scheme separator": ("postgresql//u@127.0.0.1/x", "not an RDB URL"),
    "unknown dialect": ("nosuchdb://u@127.0.0.1/x", "not an RDB URL"),
}


def _argv(tmp_path, url: str, report: bool) -> list:
    return ["tune", "smoke", *(["--report"] if report else []), "--storage", url, "--results", tmp_path / "r"]


@pytest.mark.parametrize("report", [False, True], ids=["search", "report"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_database_server_that_cannot_be_used_is_one_line(tmp_path, case, report):
    """Each unusable server URL, for a search and for ``--report``: one line naming --storage, exit 2, nothing
    written (these used to end in Optuna's traceback after the results folder was made)."""
    url, needle = CASES[case]
    url = url.replace("{closed}", str(free_port()))
    before = snapshot(tmp_path)
    rc, _, err = main(_argv(tmp_path, url, report))
    one_line(rc, err, "--storage", needle)
    assert snapshot(tmp_path) == before


def test_a_missing_driver_is_one_line_and_a_password_is_never_shown(tmp_path):
    """A server that listens but whose driver is not installed here: one line saying so, with the URL's password
    masked (in this line and in every other --storage refusal)."""
    if importlib.util.find_spec("psycopg") is not None:
        pytest.skip("psycopg is installed here: the driver is not missing")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        url = f"postgresql://u:s3cret@127.0.0.1:{port}/x"
        before = snapshot(tmp_path)
        rc, _, err = main(_argv(tmp_path, url, False))
    line = one_line(rc, err, "--storage", "driver is not installed", "psycopg")
    assert "s3cret" not in line and snapshot(tmp_path) == before
    rc, _, err = main(_argv(tmp_path, url.replace(f":{port}/", f":{free_port()}/"), False))
    assert "s3cret" not in one_line(rc, err, "cannot reach")


def test_a_second_driver_on_the_default_database_is_one_line(tmp_path):
    """Two drivers on the default storage (``<results>/<experiment>.db``) share one --results, which the results
    lock gives to one driver at a time: the second is refused with one line, exit 2, the first's files untouched
    (to share a study, give each driver its own --results and the same --storage)."""
    import subprocess
    import sys
    import time

    from faultkit import env
    results, held = tmp_path / "r", tmp_path / "held"
    holder = subprocess.Popen([sys.executable, "-c", "import pathlib, time\nfrom miar.study.lock import results_lock\n"
                               f"with results_lock({str(results)!r}):\n pathlib.Path({str(held)!r}).touch()\n"
                               " time.sleep(120)"], env=env(), start_new_session=True)
    try:
        deadline = time.time() + 60
        while not held.exists():
            assert time.time() < deadline and holder.poll() is None, "the first driver never took the lock"
            time.sleep(0.05)
        before = snapshot(results)
        rc, _, err = main(["tune", "smoke", "--results", results])
        one_line(rc, err, "another sweep is running")
        assert snapshot(results) == before
    finally:
        holder.kill()
        holder.wait(timeout=30)
