"""A fleet of agents: `freeze.source: prometheus`.

Two agents, A and B, each see half of the checkout traffic (a DaemonSet: each
node's agent reads its own node's logs). A real Prometheus scrapes both and
evaluates the rules `slo-agent rules` generates from the same specs; a third
agent, C, runs with `freeze.source: prometheus` and answers the freeze from
Prometheus's figures.

Why neither agent alone is frozen but the fleet is: the freeze policy judges
an SLO only once its window holds `min_events` events (100, the default
`alerts.min_events`): below that a 10 % error ratio could be two unlucky
requests. Checkout fails 10 % of its requests against a 1 % budget, but each
agent sees only 60 of them: alone, each answers INSUFFICIENT_DATA (allowed,
200). The fleet saw 120 events, enough to be judged, and its budget is spent
nine times over: C answers 423 FROZEN, naming the SLO. Search is clean
everywhere and stays 200 on C.

Then Prometheus stops: C keeps its last figures for three reading intervals
plus a timeout, then answers 503 saying why, and /readyz names `freeze`.
"""

import json
import time
import urllib.error
import urllib.request

from conftest import Agent, free_port, get_json, http_get, metric_value, need, run_bin, start_prometheus, wait_until

SPECS = """\
apiVersion: slo-agent/v1
kind: SLO
metadata: {name: checkout-availability}
spec:
  service: checkout
  objective: 99
  window: 28d
  indicator:
    source: ndjson
    filter: {service: checkout}
    good: {status: "< 500"}
---
apiVersion: slo-agent/v1
kind: SLO
metadata: {name: search-availability}
spec:
  service: search
  objective: 99
  window: 28d
  indicator:
    source: ndjson
    filter: {service: search}
    good: {status: "< 500"}
"""

CHECKOUT_PER_AGENT = 60  # of the 100 events an SLO needs to be judged
SEARCH_PER_AGENT = 150


def config(port, specs, extra):
    return (
        f"specs: [{specs}]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 200ms\npoll_interval: 50ms\n{extra}"
    )


def file_source(logs):
    return f"sources:\n  - name: app\n    type: file\n    paths: [\"{logs}/*.log\"]\n    format: ndjson\n"


def lines(service, n, bad):
    """`n` requests of `service` in the last few seconds, `bad` of them 503."""
    now = int(time.time() * 1000)
    return "".join(
        json.dumps({"ts": now - 3000 + i * 10, "service": service, "path": f"/api/{service}", "method": "GET",
                    "status": 503 if i < bad else 200, "latency_ms": 20}) + "\n"
        for i in range(n)
    )


def freeze(agent, service, route="freeze"):
    """(status code, JSON body) of a freeze answer; 4xx and 5xx answers included."""
    try:
        with urllib.request.urlopen(f"{agent.url}/api/v1/{route}?service={service}", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def readyz(agent):
    try:
        return http_get(agent.url + "/readyz")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def prom_result(api, q):
    r = get_json(api + "query?query=" + urllib.parse.quote(q))
    return r["data"]["result"]


def test_the_fleet_is_frozen_where_no_agent_alone_is(tmp_path):
    prometheus = need("prometheus")
    specs = tmp_path / "specs.yaml"
    specs.write_text(SPECS)
    r = run_bin("rules", "--specs", specs, "--out", tmp_path / "rules")
    assert r.returncode == 0, r.stderr
    rules = sorted((tmp_path / "rules").glob("*.rules.yaml"))

    agents, prom = [], None
    try:
        # A and B: each reads its own node's log.
        local = {}
        for name in ("a", "b"):
            d = tmp_path / name
            (d / "logs").mkdir(parents=True)
            (d / "logs" / "app.log").write_text("")
            port = free_port()
            local[name] = Agent(d, config(port, specs, file_source(d / "logs")), port)
            agents.append(local[name])

        prom, api = start_prometheus(tmp_path, prometheus, [a.port for a in local.values()], rules)
        # Both agents scraped with their counters still at zero, so every
        # event after this is an increase Prometheus sees.
        wait_until(lambda: len(prom_result(api, "slo_agent_slo_events_total")) == 4, timeout=30,
                   what="Prometheus to scrape both agents' counters")

        for name, a in local.items():
            with open(tmp_path / name / "logs" / "app.log", "a") as f:
                f.write(lines("checkout", CHECKOUT_PER_AGENT, CHECKOUT_PER_AGENT // 10))
                f.write(lines("search", SEARCH_PER_AGENT, 0))
        for a in local.values():
            wait_until(lambda a=a: metric_value(a.metrics(), "slo_agent_slo_events_total", slo="checkout-availability")
                       == CHECKOUT_PER_AGENT, what="the agent to count its half")

        # Each agent alone: too few checkout events to judge, so not frozen.
        for a in local.values():
            code, body = wait_until(lambda a=a: (lambda r: r if r[1]["slos"][0]["events"] == CHECKOUT_PER_AGENT else None)(
                freeze(a, "checkout")), what="a local evaluation with the events")
            assert code == 200, body
            assert (body["status"], body["frozen"], body["source"]) == ("INSUFFICIENT_DATA", False, "local"), body
            code, body = freeze(a, "search")
            assert (code, body["status"], body["source"]) == (200, "OK", "local"), body

        # C: the fleet's answer, from Prometheus.
        d = tmp_path / "c"
        d.mkdir()
        port = free_port()
        fleet_cfg = (
            "sources: []\nfreeze:\n  source: prometheus\n  prometheus:\n"
            f"    url: {api.removesuffix('/api/v1/')}\n    interval: 1s\n    timeout: 2s\n"
        )
        c = Agent(d, config(port, specs, fleet_cfg), port)
        agents.append(c)

        def frozen():
            code, body = freeze(c, "checkout")
            return (code, body) if code == 423 else None

        try:
            code, body = wait_until(frozen, timeout=30, what="the fleet's checkout to be frozen")
        except AssertionError as e:
            raise AssertionError(f"{e}\nC: {freeze(c, 'checkout')}\nC log:\n{c.logs()[-2000:]}") from None
        assert (body["status"], body["frozen"], body["allowed"], body["source"]) == ("FROZEN", True, False, "prometheus")
        budget = [r for r in body["reasons"] if r["kind"] == "budget"]
        assert budget and budget[0]["slo"] == "checkout-availability", body["reasons"]
        assert "checkout-availability: error budget spent" in budget[0]["message"], budget
        [slo] = body["slos"]
        assert slo["judged"] and slo["events"] >= 2 * CHECKOUT_PER_AGENT, slo
        assert abs(slo["sli"] - 0.9) < 0.01, slo

        code, body = freeze(c, "search")
        assert (code, body["status"], body["frozen"], body["source"]) == (200, "OK", False, "prometheus"), body
        everything = c.get("/api/v1/freeze")
        assert everything["source"] == "prometheus"
        assert {s["service"]: s["status"] for s in everything["services"]} == {"checkout": "FROZEN", "search": "OK"}
        # The local agents still answer from their own halves.
        assert freeze(local["a"], "checkout")[0] == 200

        # Prometheus goes away: the last figures are answered from for a
        # while (3 intervals + the timeout: 5 s), then 503 and not ready.
        prom.terminate()
        prom.wait(timeout=30)
        prom = None
        gone = time.monotonic()
        code, body = wait_until(lambda: (lambda r: r if r[0] == 503 else None)(freeze(c, "checkout")), timeout=20,
                                what="503 once the fleet's figures are stale")
        assert time.monotonic() - gone >= 3, "the last figures are kept while they are recent"
        assert body["error"].startswith("the fleet freeze cannot be read from Prometheus: "), body
        code, text = readyz(c)
        assert code == 503 and "\nfreeze: the fleet freeze cannot be read from Prometheus" in text, text
        code, body = freeze(c, "checkout", route="freeze/verdict")
        assert (code, body["allowed"], body["status"]) == (200, False, "UNAVAILABLE"), body
        assert metric_value(c.metrics(), "slo_agent_freeze_source_errors_total", kind="unreachable") >= 1
    finally:
        if prom is not None:
            prom.terminate()
            prom.wait(timeout=30)
        for a in agents:
            a.stop()
