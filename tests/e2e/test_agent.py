"""The built binary against real peers: Prometheus scrapes a running agent,
promtool lints its exposition, specs reload on SIGHUP and on file change,
`validate` and `demo` behave as documented."""

import re
import signal
import subprocess
import time

from conftest import (
    ROOT, Agent, free_port, generate, get_json, http_get, metric_value, need, run_bin, utc_date, wait_until,
)

SPECS_10 = ROOT / "tests" / "bench" / "specs-10.yaml"


def agent_config(specs, logs_glob, port, extra=""):
    return (
        f"specs: [{specs}]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 200ms\npoll_interval: 50ms\n"
        f"sources:\n  - name: cloudfront\n    type: file\n    paths: [\"{logs_glob}\"]\n    format: cloudfront\n{extra}"
    )


def wait_ingested(agent, lines):
    wait_until(
        lambda: metric_value(agent.metrics(), "slo_agent_ingest_lines_total", source="cloudfront") == lines,
        what=f"{lines} lines ingested",
    )
    time.sleep(0.5)  # let an evaluation tick publish


def test_prometheus_scrapes_the_agent_and_sees_the_same_numbers(tmp_path, agent_factory):
    prometheus = need("prometheus")
    promtool = need("promtool")
    logs = tmp_path / "logs"
    logs.mkdir()
    generate(logs / "cf.log", 20000, utc_date(1))
    port = free_port()
    agent = agent_factory(agent_config(SPECS_10, logs / "*.log", port), port)
    wait_ingested(agent, 20002)  # two header lines included

    # The exposition passes promtool's linter.
    text = agent.metrics()
    lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr

    prom_port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"scrape_configs:\n  - job_name: slo-agent\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
    )
    prom = subprocess.Popen(
        [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        api = f"http://127.0.0.1:{prom_port}/api/v1/query?query="

        def scraped():
            r = get_json(api + "slo_agent_slo_window_events%7Bkind%3D%22total%22%7D")
            return r["data"]["result"] if len(r["data"]["result"]) == 10 else None

        result = wait_until(scraped, timeout=60, what="Prometheus to scrape 10 SLOs")
        from_prom = {r["metric"]["slo"]: float(r["value"][1]) for r in result}
        from_api = {s["name"]: s["events"]["total"] for s in agent.get("/api/v1/slos")["slos"]}
        assert from_prom == from_api
        assert sum(from_api.values()) > 20000  # SLOs overlap; every request counts for at least one
        up = get_json(api + "up")["data"]["result"]
        assert up[0]["value"][1] == "1"
        burn = get_json(api + "slo_agent_slo_burn_rate_ratio%7Bwindow%3D%223d%22%7D")["data"]["result"]
        assert len(burn) == 10
    finally:
        prom.terminate()
        prom.wait(timeout=30)
    assert agent.stop() == 0


def test_api_serves_reports_and_errors(tmp_path, agent_factory):
    logs = tmp_path / "logs"
    logs.mkdir()
    generate(logs / "cf.log", 3000, utc_date(1))
    port = free_port()
    agent = agent_factory(agent_config(SPECS_10, logs / "*.log", port), port)
    wait_ingested(agent, 3002)
    assert http_get(agent.url + "/healthz")[0] == 200
    listing = agent.get("/api/v1/slos")
    assert {"at", "rejected_lines", "slos"} <= listing.keys()
    one = agent.get("/api/v1/slos/bench-api-latency")
    assert one["name"] == "bench-api-latency"
    assert set(one["burn_rates"]) == {"5m", "30m", "1h", "2h", "6h", "1d", "3d"}
    assert one["events"]["total"] == one["events"]["good"] + one["events"]["bad"]
    try:
        http_get(agent.url + "/api/v1/slos/nope")
        raise AssertionError("expected 404")
    except Exception as e:  # urllib raises HTTPError for 404
        assert getattr(e, "code", None) == 404
    # Lag: the events are from yesterday, so at least several hours behind the clock.
    lag = metric_value(agent.metrics(), "slo_agent_ingest_lag_seconds", source="cloudfront")
    assert lag is not None and lag > 3600, lag
    # A malformed line is counted, with its reason, and the agent goes on.
    with open(logs / "cf.log", "a") as f:
        f.write("garbage without tabs\n")
    wait_until(
        lambda: metric_value(agent.metrics(), "slo_agent_rejected_lines_total", source="cloudfront") == 1,
        what="the rejected line counted",
    )
    assert "rejected line" in agent.logs()


def test_specs_reload_on_sighup_and_on_change_and_bad_specs_keep_the_old(tmp_path, agent_factory):
    logs = tmp_path / "logs"
    logs.mkdir()
    generate(logs / "cf.log", 2000, utc_date(1))
    specs = tmp_path / "specs"
    specs.mkdir()
    spec = specs / "slo.yaml"
    text = SPECS_10.read_text()
    spec.write_text(text)
    port = free_port()
    agent = agent_factory(agent_config(specs, logs / "*.log", port), port)
    wait_ingested(agent, 2002)
    before = agent.get("/api/v1/slos/bench-api-latency")

    # A change of objective keeps the counts.
    spec.write_text(text.replace("name: bench-api-latency\nspec:\n  service: shop\n  objective: 99.0",
                                 "name: bench-api-latency\nspec:\n  service: shop\n  objective: 95"))
    agent.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: agent.get("/api/v1/slos/bench-api-latency")["objective"] == 0.95, what="reload")
    after = agent.get("/api/v1/slos/bench-api-latency")
    assert after["events"] == before["events"]

    # A broken spec is refused; the old specs stay in force.
    spec.write_text(text.replace("objective: 99.0", "objective: 250", 1))
    wait_until(lambda: metric_value(agent.metrics(), "slo_agent_spec_reload_failures_total") == 1,
               what="reload refused (file change noticed without a signal)")
    assert "objective" in agent.logs() and "keeping the previous specs" in agent.logs()
    assert agent.get("/api/v1/slos/bench-api-latency")["objective"] == 0.95
    assert len(agent.get("/api/v1/slos")["slos"]) == 10


def test_validate_reports_every_problem_with_position(tmp_path):
    ok = run_bin("validate", ROOT / "slo-specs")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata:\n  name: x\nspec:\n  service: s\n  objective: 100\n"
        "  window: 28x\n  indicator:\n    source: cloudfront\n    good:\n      status: \"< 5oo\"\n"
    )
    r = run_bin("validate", bad)
    assert r.returncode == 1
    lines = r.stdout.strip().splitlines()
    assert any(line.startswith(f"{bad}:7:14: ") for line in lines), lines
    assert any(line.startswith(f"{bad}:8:13: unknown unit") for line in lines), lines
    assert any(line.startswith(f"{bad}:12:18: ") and "5oo" in line for line in lines), lines


def test_demo_runs_the_real_pipeline_and_ends_with_a_summary():
    # One day of history keeps the debug build quick; the incidents are on the demo day.
    r = run_bin("demo", "--plain", "--seconds", "3", "--history-days", "1", "--listen", f"127.0.0.1:{free_port()}",
                "--date", "2026-11-20")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "http://127.0.0.1:" in out and "/metrics" in out
    assert "summary" in out and "alert episodes" in out
    # The scripted incidents page: 5xx on checkout, latency on the API.
    assert "PAGE   checkout-availability" in out
    assert "PAGE   api-latency" in out
    # Every line written was read, none rejected.
    m = re.search(r"(\d+) log lines written \(.*\), (\d+) read by the agent, (\d+) rejected", out)
    assert m, out[-500:]
    assert m.group(1) == m.group(2) and m.group(3) == "0", m.group(0)
