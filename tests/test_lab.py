"""JupyterLab serves the notebooks with the project's kernel, as `make lab` starts it."""

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.xdist_group("lab")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_jupyterlab_serves_the_notebooks_with_the_projects_kernel(tmp_path):
    port, token = free_port(), secrets.token_hex(16)
    log = (tmp_path / "lab.log").open("w")
    # --allow-root: CI runs as root, where JupyterLab otherwise refuses to start
    lab = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--ServerApp.port={port}",
         "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--notebook-dir={ROOT / 'notebooks'}"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path)})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                get(f"{base}/api/status?token={token}")
                break
            except OSError:
                assert lab.poll() is None, (tmp_path / "lab.log").read_text()
                assert time.monotonic() < deadline, "JupyterLab did not answer within 90 s"
                time.sleep(0.5)
        with urllib.request.urlopen(f"{base}/lab?token={token}", timeout=10) as page:
            assert page.status == 200 and b"JupyterLab" in page.read()
        kernels = get(f"{base}/api/kernelspecs?token={token}")["kernelspecs"]
        assert "mnist-pruning" in kernels, "make env registers the project's kernel (python -m ipykernel install)"
        assert kernels["mnist-pruning"]["spec"]["display_name"] == "MNIST pruning (helpers, .venv)"
        listed = {item["name"] for item in get(f"{base}/api/contents?token={token}")["content"]}
        assert {"01_data_exploration.ipynb", "05_comparison.ipynb"} <= listed
    finally:
        lab.terminate()
        lab.wait(timeout=30)
        log.close()
