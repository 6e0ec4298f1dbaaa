"""The built binary's CloudWatch export in Embedded Metric Format
(`export.cloudwatch`, `mode: emf`, docs/cloudwatch.md): the JSON lines on
stdout follow the EMF specification and carry the agent's own figures."""

import json
import math
import signal
import subprocess
import threading
import time

from conftest import BIN, free_port, get_json, http_get, metric_value, wait_until

SPEC = """apiVersion: slo-agent/v1
kind: SLO
metadata: {name: checkout-availability}
spec:
  service: checkout
  objective: 99
  window: 28d
  indicator: {source: ndjson, good: {status: "< 500"}}
"""

UNITS = {"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
         "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
         "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
         "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None"}


def check_emf(doc):
    """One document against the EMF specification: the `_aws` metadata
    (integer millisecond Timestamp, CloudWatchMetrics directives with a
    Namespace, dimension sets of at most 30 names that are string members
    of the root, 1 to 100 metric definitions that are numeric members,
    CloudWatch units)."""
    assert isinstance(doc, dict)
    meta = doc["_aws"]
    ts = meta["Timestamp"]
    assert isinstance(ts, int) and ts > 10**12, ts
    directives = meta["CloudWatchMetrics"]
    assert isinstance(directives, list) and directives
    for d in directives:
        assert isinstance(d["Namespace"], str) and 0 < len(d["Namespace"]) <= 255
        for dim_set in d["Dimensions"]:
            assert isinstance(dim_set, list) and len(dim_set) <= 30
            for name in dim_set:
                assert isinstance(doc.get(name), str) and doc[name], (name, doc)
        metrics = d["Metrics"]
        assert 1 <= len(metrics) <= 100
        for m in metrics:
            v = doc.get(m["Name"])
            assert isinstance(v, (int, float)) and math.isfinite(v), (m, doc)
            assert m.get("Unit", "None") in UNITS, m


def test_emf_lines_on_stdout_carry_the_agents_figures(tmp_path):
    now = time.time()
    # 100 requests 20 to 30 minutes ago, 10 of them 503: inside the 1h
    # window and the SLO window, outside the 5m window.
    with open(tmp_path / "app.log", "w") as f:
        for i in range(100):
            ts = int((now - 30 * 60 + i * 6) * 1000)
            status = 503 if i % 10 == 0 else 200
            f.write(json.dumps({"ts": ts, "service": "checkout", "path": "/pay", "status": status}) + "\n")
    (tmp_path / "slos.yaml").write_text(SPEC)
    port = free_port()
    (tmp_path / "agent.yaml").write_text(
        f"specs: [slos.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 200ms\npoll_interval: 50ms\n"
        "sources:\n  - {name: app, type: file, paths: [app.log], format: ndjson}\n"
        "export:\n  cloudwatch:\n    mode: emf\n    interval: 1s\n    windows: [5m, 1h]\n"
        "    dimensions: {Cluster: e2e}\n"
    )
    lines = []
    log = open(tmp_path / "agent.log", "w")
    proc = subprocess.Popen([BIN, "run", "--config", str(tmp_path / "agent.yaml")], stdout=subprocess.PIPE,
                            stderr=log, text=True)

    def read():
        for line in proc.stdout:
            if len(lines) < 10000:
                lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_get(url + "/readyz")[0] == 200, what="agent ready")

        def exported_all():
            docs = [json.loads(l) for l in list(lines)]
            return sum(d.get("Events", 0) for d in docs) == 100

        wait_until(exported_all, timeout=60, what="every event exported")
        time.sleep(1.5)  # one more export of the same figures
        metrics = http_get(url + "/metrics")[1]
        slos = get_json(url + "/api/v1/slos")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        reader.join(timeout=10)
        log.close()
    assert code == 0, (tmp_path / "agent.log").read_text()

    docs = [json.loads(l) for l in lines]
    assert docs, "EMF lines on stdout"
    for d in docs:
        check_emf(d)
    # The agent's logs went to stderr: stdout is EMF only.
    assert all("_aws" in d for d in docs)
    plain = [d for d in docs if "SLI" in d]
    burns = [d for d in docs if "BurnRate" in d]
    for d in plain:
        assert d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "SloAgent"
        assert d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Service", "SLO", "Cluster"]]
        assert (d["Service"], d["SLO"], d["Cluster"]) == ("checkout", "checkout-availability", "e2e")
    for d in burns:
        assert d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Service", "SLO", "Window", "Cluster"]]
    # Counts: per export, adding up to what the agent counted, each event once.
    assert sum(d["Events"] for d in docs if "Events" in d) == 100
    assert sum(d["GoodEvents"] for d in docs if "GoodEvents" in d) == 90
    assert sum(d["BadEvents"] for d in docs if "BadEvents" in d) == 10
    # Gauges: the last export's figures are the agent's.
    last = plain[-1]
    assert math.isclose(last["SLI"], metric_value(metrics, "slo_agent_slo_sli_ratio"), rel_tol=1e-12)
    assert math.isclose(last["ErrorBudgetRemaining"],
                        metric_value(metrics, "slo_agent_slo_error_budget_remaining_ratio"), rel_tol=1e-12)
    assert math.isclose(last["SLI"], slos["slos"][0]["sli"], abs_tol=1e-4)
    # The 1h window has the events; the 5m window has none, and so no data point.
    assert {d["Window"] for d in burns} == {"1h"}
    assert math.isclose(burns[-1]["BurnRate"], metric_value(metrics, "slo_agent_slo_burn_rate_ratio", window="1h"),
                        rel_tol=1e-12)
    assert metric_value(metrics, "slo_agent_export_data_points_total", exporter="cloudwatch") > 0
    assert metric_value(metrics, "slo_agent_export_failures_total") is None
