"""Partial or total? Two agents in two regions probe the same endpoint.

A local target answers 200, except to the agent in us-east-1 (it sends its
region in a header), which gets 503: the site is down from one region of two.
A real Prometheus scrapes both agents (each target labelled with its region,
`honor_labels` so the agents' own `region` label on the probe series stays)
and evaluates the rules `slo-agent rules` generates for the synthetic SLO:

- `probe_success` per region (blackbox_exporter's name) says where it fails;
- `slo:sli_error_by_region:ratio_rate5m` is 0 for eu-west-1 and 1 for us-east-1;
- `slo:regions_failing:ratio` is 0.5: partial.

The agents' `/metrics`, probe series included, are what a real Prometheus
scrapes here, so they also parse as a scrape.
"""

import http.server
import subprocess
import threading
import urllib.parse

from conftest import Agent, free_port, get_json, need, run_bin, wait_until

SPECS = """\
apiVersion: slo-agent/v1
kind: SLO
metadata: {name: storefront-edge}
spec:
  service: storefront
  objective: 99
  window: 28d
  indicator:
    source: synthetic
    filter: {service: storefront, hop: edge}
    good: {status: 2xx}
"""


class Target(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        down = self.headers.get("x-agent-region") == "us-east-1"
        body = b"down\n" if down else b"ok\n"
        self.send_response(503 if down else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def query(base, q):
    return get_json(base + "query?" + urllib.parse.urlencode({"query": q}))["data"]["result"]


def test_a_fleet_in_two_regions_tells_partial_from_total(tmp_path):
    prometheus = need("prometheus")
    target = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Target)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    tport = target.server_address[1]

    specs = tmp_path / "storefront.yaml"
    specs.write_text(SPECS)
    r = run_bin("rules", "--specs", specs, "--out", tmp_path / "rules")
    assert r.returncode == 0, r.stderr
    rules = sorted((tmp_path / "rules").glob("*.rules.yaml"))
    text = rules[0].read_text()
    assert "slo:regions_failing:ratio" in text and "slo:sli_error_by_region:ratio_rate5m" in text, text
    promtool = need("promtool")
    check = subprocess.run([promtool, "check", "rules", *map(str, rules)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr

    agents = []
    try:
        for region in ("eu-west-1", "us-east-1"):
            d = tmp_path / region
            d.mkdir()
            port = free_port()
            config = (
                f"specs: ['{specs}']\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 1s\n"
                f"region: {region}\n"
                "probes:\n  - name: storefront\n    interval: 1s\n    retries: 0\n"
                f"    headers: {{x-agent-region: {region}}}\n"
                f"    hops:\n      - {{name: edge, url: \"http://127.0.0.1:{tport}/health\"}}\n"
            )
            agents.append((region, Agent(d, config, port)))

        pport = free_port()
        targets = "\n".join(
            f"      - {{targets: ['127.0.0.1:{a.port}'], labels: {{region: {region}}}}}" for region, a in agents
        )
        (tmp_path / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: [{', '.join(repr(str(r)) for r in rules)}]\n"
            "scrape_configs:\n  - job_name: slo-agent\n    honor_labels: true\n    static_configs:\n"
            f"{targets}\n"
        )
        prom = subprocess.Popen(
            [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{pport}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{pport}/api/v1/"
        try:
            wait_until(lambda: get_json(base + "targets")["data"]["activeTargets"]
                       and all(t["health"] == "up" for t in get_json(base + "targets")["data"]["activeTargets"]),
                       timeout=60, what="Prometheus scraping both agents")
            # The probe series, per region, as blackbox_exporter names them.
            def success():
                rows = query(base, 'probe_success{probe="storefront",hop="edge"}')
                return {r["metric"]["region"]: r["value"][1] for r in rows}
            wait_until(lambda: success() == {"eu-west-1": "1", "us-east-1": "0"}, timeout=60,
                       what="probe_success per region")
            # The generated rules: per region, and the share of regions failing.
            def by_region():
                rows = query(base, 'slo:sli_error_by_region:ratio_rate5m{sloth_slo="storefront-edge"}')
                return {r["metric"].get("region"): float(r["value"][1]) for r in rows}
            wait_until(lambda: by_region() == {"eu-west-1": 0.0, "us-east-1": 1.0}, timeout=90,
                       what=f"the error ratio by region (now {by_region()})")

            def failing():
                rows = query(base, 'slo:regions_failing:ratio{sloth_slo="storefront-edge"}')
                return [float(r["value"][1]) for r in rows]
            wait_until(lambda: failing() == [0.5], timeout=60, what=f"regions failing 0.5 (now {failing()})")
            # The fleet's SLO over both regions burns at half the traffic.
            ratio = query(base, 'slo:sli_error:ratio_rate5m{sloth_slo="storefront-edge"}')
            assert 0.3 < float(ratio[0]["value"][1]) < 0.7, ratio
        finally:
            prom.terminate()
            prom.wait(timeout=30)
    finally:
        for _, a in agents:
            a.stop()
        target.shutdown()
