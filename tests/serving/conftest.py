"""A real registry with two exported tiny-BERT versions, and a helper that runs 'calibgate serve' as a process.

router@v1.0.0 is a tiny random BERT with a linear head; router@v1.1.0 is the
same encoder with the head's bias pushed towards one label, so the two agree
on some texts and not on others. Both are exported to ONNX, evaluated and
registered (dir store) in a temporary git project.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.export.conftest import LABELED, LABEL_NAMES, TEXTS, make_run, write_jsonl
from tests.registry.conftest import init_project

REPO_ROOT = Path(__file__).resolve().parents[2]

ROLLOUT_POLICY = """\
checks:
  accuracy_floor: {min: 0.0}
approvals:
  production: {required: 1}
rollout:
  order: [shadow, canary, production]
  stages:
    canary:
      shadow: {min_requests: 5, min_agreement: 0.0, max_latency_ratio: 50}
    production:
      canary: {min_requests: 5, max_error_rate: 0.0}
monitor:
  log_text: true
  max_error_rate: 0.0
  low_confidence: 0.6
"""


def _heads(hidden: int):
    import torch

    generator = torch.Generator().manual_seed(0)
    n = len(LABEL_NAMES)
    weight = torch.randn(n, hidden, generator=generator) * 3
    bias = torch.randn(n, generator=generator)
    skewed = bias.clone()
    skewed[0] += 4.0
    return {"weight": weight, "bias": bias}, {"weight": weight.clone(), "bias": skewed}


@pytest.fixture(scope="session")
def served_project(tmp_path_factory, tiny_bert_dir) -> Path:
    """tmp/project: git repo with policies/gate.yaml = ROLLOUT_POLICY and router@v1.0.0, router@v1.1.0 registered."""
    from calibgate.evaluation.api import evaluate
    from calibgate.export.api import export
    from calibgate.registry.api import register

    base = tmp_path_factory.mktemp("serving")
    root = init_project(base / "project", dvc=False)
    (root / "policies" / "gate.yaml").write_text(ROLLOUT_POLICY)
    with (root / ".gitignore").open("a") as fh:  # the artifact store lives in the repo: it must be ignored
        fh.write("/store/\n")
    subprocess.run(["git", "add", ".gitignore", "policies/gate.yaml"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-qm", "rollout policy"], cwd=root, check=True)
    test = write_jsonl(base / "test.jsonl", [{"text": t, "label": y} for t, y in LABELED])
    hidden = json.loads((tiny_bert_dir / "config.json").read_text())["hidden_size"]
    for run_id, tensors, version in zip(("a", "b"), _heads(hidden), ("v1.0.0", "v1.1.0")):
        run = make_run(base / "runs" / run_id, tiny_bert_dir, tensors=tensors, run_id=run_id)
        export(run, parity_texts=TEXTS, latency_runs=0)
        evaluate(model=run, test=test, bootstrap=0, base=False)
        register(run, version=version, store="store", repo=root)
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# the server runs in an interpreter where importing torch or transformers fails: serving is torch-free
BLOCKED_MAIN = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'transformers'):
            raise ImportError('blocked in the serving tests: ' + name)
sys.meta_path.insert(0, Block())
from calibgate.cli import main
sys.argv = ['calibgate'] + sys.argv[1:]
main()
"""


class Server:
    """'calibgate serve ...' in a child process on 127.0.0.1 (torch blocked), ready once /healthz answers."""

    def __init__(self, cwd: Path, *args: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", BLOCKED_MAIN, "serve", *args, "--port", str(self.port), "--workers", "2"],
            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}: {self.proc.stderr.read()}")
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise AssertionError("server did not answer /healthz within 120 s")

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict | str, dict]:
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, raw, hdrs = resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            status, raw, hdrs = exc.code, exc.read(), dict(exc.headers)
        text = raw.decode("utf-8")
        try:
            return status, json.loads(text), hdrs
        except ValueError:
            return status, text, hdrs

    def get(self, path: str):
        return self.request("GET", path)

    def predict(self, payload, *, request_id: str | None = None):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", **({"X-Request-ID": request_id} if request_id else {})}
        return self.request("POST", "/predict", body, headers)

    def stop(self) -> str:
        """SIGTERM and wait (uvicorn shuts down gracefully: shadow work is logged); returns stderr."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.stderr.read()


@pytest.fixture
def serve(served_project):
    """serve(*args) -> a running Server in the project; every server is stopped at teardown."""
    servers: list[Server] = []

    def start(*args: str) -> Server:
        server = Server(served_project, *args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
