"""``make lab``: JupyterLab starts headless at the repository root with the project's kernel, answers on
``/lab``, runs ``notebooks/explore.ipynb`` cell by cell through its own kernel (REST + the kernel websocket, as
the Lab front end does), shows up in headless Chromium, and writes nothing outside the venv (``$HOME`` is an
empty temporary directory here and must stay empty). The server is stopped by its process-group id."""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
websocket = pytest.importorskip("websocket")
pytestmark = pytest.mark.skipif(not (REPO / ".venv" / "bin" / "jupyter").is_file() or not shutil.which("make"),
                                reason="needs make and the project's .venv (make setup)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(base: str, token: str, path: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(f"{base}{path}", method="POST" if body is not None else "GET",
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"{}")


def execute(ws, code: str, timeout: float = 120) -> list[dict]:
    """One execute_request on the kernel's websocket; the iopub messages of that request until it is idle."""
    msg_id = uuid.uuid4().hex
    ws.send(json.dumps({"header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test",
                                   "session": uuid.uuid4().hex, "version": "5.3", "date": ""},
                        "parent_header": {}, "metadata": {}, "channel": "shell",
                        "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                                    "allow_stdin": False, "stop_on_error": True}}))
    out, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = json.loads(ws.recv())
        if m.get("parent_header", {}).get("msg_id") != msg_id or m.get("channel") != "iopub":
            continue
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            return out
        out.append(m)
    raise TimeoutError(code[:80])


@pytest.fixture
def lab(tmp_path):
    port, token, home = free_port(), secrets.token_hex(16), tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_DATA_HOME": str(home / ".local/share"), "XDG_CACHE_HOME": str(home / ".cache"),
           "PYTHONPATH": str(REPO)}
    args = f"--no-browser --port={port} --ServerApp.ip=127.0.0.1 --IdentityProvider.token={token}"
    proc = subprocess.Popen(["make", "-s", "-o", "setup", "lab", f"LAB_ARGS={args}"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "lab.log", "w"),
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/lab?token={token}", timeout=5) as r:
                    assert r.status == 200 and b"JupyterLab" in r.read()
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not answer:\n" + (tmp_path / "lab.log").read_text()[-3000:])
                time.sleep(1)
        yield {"base": base, "token": token, "home": home, "proc": proc}
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group of make and the server it started (by the group's id, make's PID)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=30)
            break
        except subprocess.TimeoutExpired:
            continue
    proc.wait(timeout=30)


def test_make_lab_runs_explore_through_its_kernel(lab, tmp_path):
    base, token = lab["base"], lab["token"]
    assert "miar" in api(base, token, "/api/kernelspecs")["kernelspecs"]
    contents = api(base, token, "/api/contents")  # the server's root is the repository
    assert {"notebooks", "results", "book"} <= {c["name"] for c in contents["content"]}
    session = api(base, token, "/api/sessions", {"path": "notebooks/explore.ipynb", "type": "notebook",
                                                  "name": "explore.ipynb", "kernel": {"name": "miar"}})
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{base.rsplit(':', 1)[1]}/api/kernels/{session['kernel']['id']}/channels?token={token}",
        timeout=120, suppress_origin=True)
    try:
        nb = nbformat.read(REPO / "notebooks" / "explore.ipynb", as_version=4)
        shown = []
        for cell in (c for c in nb.cells if c.cell_type == "code"):
            msgs = execute(ws, cell.source)
            errors = [m["content"] for m in msgs if m["msg_type"] == "error"]
            assert not errors, f"{cell.source[:80]}: {errors[0]['ename']}: {errors[0]['evalue']}"
            shown += [m["content"]["data"] for m in msgs if m["msg_type"] in ("display_data", "execute_result")]
        assert any("image/png" in d for d in shown) and any("MAE" in d.get("text/markdown", "") for d in shown)
    finally:
        ws.close()
    import importlib.util
    spec = importlib.util.spec_from_file_location("render", REPO / "scripts" / "check_book_render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    binary = render.find_chromium()
    if binary is not None:
        with render.Browser(binary, width=1400, height=900) as b:
            b.open(f"{base}/lab/tree/notebooks/explore.ipynb?token={token}")
            b.evaluate("new Promise(r => setTimeout(r, 8000))")  # the Lab front end loads after the page
            png = b.screenshot(tmp_path / "lab.png")
        stats = render.image_stats(png)
        assert stats["std"] > 8 and stats["ink"] > 0.02, stats
    assert not any(lab["home"].rglob("*")), f"written to $HOME: {sorted(lab['home'].rglob('*'))[:5]}"
