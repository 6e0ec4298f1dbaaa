"""Shared fixtures for end-to-end tests: the built binary, free ports, an
agent process, and real peers (Prometheus). Every address is on loopback."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("SLO_AGENT_BIN") or str(
    Path(os.environ.get("CARGO_TARGET_DIR", "/var/tmp/slo-agent-target")) / "debug" / "slo-agent"
)
IN_CI = os.environ.get("CI") == "true"


def need(tool):
    """A peer binary; in CI its absence fails the test, elsewhere skips it."""
    path = shutil.which(tool)
    if path is None:
        if IN_CI:
            pytest.fail(f"peer {tool} is missing in CI")
        pytest.skip(f"peer {tool} is not installed")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def get_json(url):
    return json.loads(http_get(url)[1])


def wait_until(pred, timeout=60, step=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - peers come up over time
            last = e
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def run_bin(*args, **kw):
    return subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, timeout=300, **kw)


def metric_value(text, name, **labels):
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


class Agent:
    """`slo-agent run` on a config file, stopped with SIGTERM."""

    def __init__(self, workdir, config_text, port):
        self.workdir = Path(workdir)
        self.port = port
        self.config = self.workdir / "agent.yaml"
        self.config.write_text(config_text)
        self.log = open(self.workdir / "agent.log", "w")
        self.proc = subprocess.Popen(
            [BIN, "run", "--config", str(self.config)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "SLO_AGENT_LOG": "info"},
        )
        self.url = f"http://127.0.0.1:{port}"
        wait_until(lambda: http_get(self.url + "/readyz")[0] == 200, what="agent ready")

    def get(self, path):
        return get_json(self.url + path)

    def metrics(self):
        return http_get(self.url + "/metrics")[1]

    def logs(self):
        return (self.workdir / "agent.log").read_text()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            code = self.proc.wait(timeout=60)
        else:
            code = self.proc.returncode
        self.log.close()
        return code


@pytest.fixture
def agent_factory(tmp_path):
    agents = []

    def make(config_text, port):
        a = Agent(tmp_path, config_text, port)
        agents.append(a)
        return a

    yield make
    for a in agents:
        a.stop()


def generate(path, lines, date):
    r = run_bin("generate", "--lines", lines, "--date", date, "--out", path)
    assert r.returncode == 0, r.stderr


def utc_date(days_ago):
    t = time.time() - days_ago * 86400
    return time.strftime("%Y-%m-%d", time.gmtime(t))


def start_prometheus(tmp_path, prometheus, agent_port, rules):
    """A Prometheus scraping the agent (or agents: a list of ports) every second with
    `rules` loaded: (process, API base URL)."""
    port = free_port()
    ports = agent_port if isinstance(agent_port, (list, tuple)) else [agent_port]
    targets = ", ".join(f"'127.0.0.1:{p}'" for p in ports)
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: [{', '.join(repr(str(r)) for r in rules)}]\n"
        f"scrape_configs:\n  - job_name: slo-agent\n    static_configs: [{{targets: [{targets}]}}]\n"
    )
    proc = subprocess.Popen(
        [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return proc, f"http://127.0.0.1:{port}/api/v1/"
