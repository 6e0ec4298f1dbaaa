"""The Grafana dashboards in `dashboards/`: well-formed, and every query of
every panel and every Prometheus annotation returns data from a real
Prometheus that scrapes a running agent (with the rules from `slo-agent
rules` loaded) on traffic that fails: 5xx answers for the top-failures
breakdown and the alerts, a rejected line, a Firehose delivery, a webhook
receiver for the notification outbox, a journey of the service against the
agent's own API, and, once Prometheus has scraped the agent, a deploy and a
manual freeze change (the incident dashboard's annotations).

Template variables are replaced the way Grafana does before it sends a query:
`$__rate_interval` by 1m, `$__range` by 1h, and the dashboard's own variables
by a real SLO, service and instance (regex-escaped for multi-value ones), and
again by their "All" value."""

import base64
import gzip
import http.server
import json
import math
import random
import re
import threading
import time
import urllib.parse

from conftest import ROOT, free_port, get_json, need, run_bin, start_prometheus, wait_until

from test_agent import SPECS_10
from test_push import post, subscription_record

DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
SLO = "bench-storefront-availability"  # in SPECS_10; the traffic below fails on its paths
SERVICE = "shop"
# The live signals dashboard's series: the CloudFront requests of the service, over all of them.
SIGNAL, DIMENSION, ORIGIN = "requests", "all", "cloudfront"
KEY = "e2e-dashboards-firehose-key"
ADMIN = "e2e-dashboards-admin-token-0123456789"
JOURNEY = "shop-api"

# Grafana's built-in variables, as they would be for a 1-hour range with a
# scrape interval that makes $__rate_interval one minute.
BUILTINS = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}

# Queries over series that exist only in some deployments: the test still
# runs them (they must be valid PromQL), but an empty answer is not a failure.
# A panel over a metric that only some builds export reads `... or vector(0)`
# instead (source errors exist only in AWS builds, after a failed call). The
# metrics below are absent by design whenever nothing is wrong, and a query that
# reads one of them may come back empty (the key is matched as a substring of the query).
EMPTY_BY_DESIGN: dict = {
    # Exported only while an anomaly is open; steady test traffic opens none.
    "slo_agent_anomaly_started_timestamp_seconds": "only while an anomaly is open",
    # Exported only when the forecast exhausts the SLO's budget within its window.
    "slo_agent_slo_budget_exhaustion_forecast_seconds": "only when the budget runs out within the window",
    # Exported only when the forecast growth reaches the quota within signals.quotas.horizon;
    # a few minutes of test traffic are far from any AWS default quota.
    "slo_agent_quota_time_until_seconds": "only when a quota is reached within the horizon",
}

# Grafana's escaping of multi-value Prometheus variables (prometheusSpecialRegexEscape).
REGEX_SPECIAL = re.compile(r"[$^*{}\[\]'+?.()|]")
VAR = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)(?::(\w+))?\]\]|\$(\w+)")
LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*(\w+)\s*\)\s*$", re.S)


def load(path):
    return json.loads(path.read_text())


def all_panels(dashboard):
    """Every panel, those inside collapsed rows included."""
    for p in dashboard.get("panels", []):
        yield p
        yield from p.get("panels", [])


def query_panels(dashboard):
    return [p for p in all_panels(dashboard) if p.get("type") != "row"]


def prometheus_annotations(dashboard):
    """The annotations that query the Prometheus data source (not Grafana's built-in one, not Infinity's)."""
    return [a for a in dashboard.get("annotations", {}).get("list", [])
            if a.get("datasource", {}).get("type") == "prometheus"]


def variables(dashboard):
    return {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}


def variable_query(v):
    q = v.get("query")
    return q.get("query", "") if isinstance(q, dict) else (q or v.get("definition", ""))


def substitute(expr, values, multi):
    """`expr` with Grafana's variables replaced; raises KeyError naming an unknown one.
    `values` maps names to a value; `multi` names the variables whose value is
    a regex (multi-value or All), which Grafana escapes unless it is the All value."""

    def repl(m):
        name = m.group(1) or m.group(3) or m.group(5)
        fmt = m.group(2) or m.group(4)
        if name.isdigit():
            return m.group(0)  # a label_replace backreference, not a variable
        if name in BUILTINS:
            return BUILTINS[name]
        if name not in values:
            raise KeyError(name)
        value, is_all = values[name]
        if fmt in (None, "regex") and name in multi and not is_all:
            return REGEX_SPECIAL.sub(lambda c: "\\\\" + c.group(0), value)
        if fmt in (None, "raw", "regex", "pipe", "text"):
            return value
        raise KeyError(f"{name}:{fmt} (format not handled)")

    return VAR.sub(repl, expr)


def test_dashboards_are_well_formed():
    assert {p.name for p in DASHBOARDS} >= {"slo-overview.json", "slo-detail.json", "agent-health.json", "signals.json",
                                            "incident.json"}
    uids = set()
    for path in DASHBOARDS:
        d = load(path)
        where = path.name
        assert d.get("uid") and d.get("title"), f"{where}: uid and title"
        assert d["uid"] not in uids, f"{where}: uid {d['uid']} used twice"
        uids.add(d["uid"])
        assert d.get("schemaVersion", 0) >= 36, where
        vs = variables(d)
        ds = vs.get("datasource")
        assert ds and ds["type"] == "datasource" and ds["query"] == "prometheus", f"{where}: datasource variable"
        for v in vs.values():
            if v["type"] == "query":
                assert LABEL_VALUES.match(variable_query(v)), f"{where}: variable {v['name']}: label_values(...)"
                assert v["datasource"]["uid"] == "${datasource}", f"{where}: variable {v['name']} datasource"
        ids = [p.get("id") for p in all_panels(d)]
        assert all(isinstance(i, int) for i in ids), f"{where}: panel without an id"
        assert len(ids) == len(set(ids)), f"{where}: duplicate panel ids"
        # The visible layout (panels inside collapsed rows lay out when the row opens):
        # inside the 24 columns, no two panels on the same cell.
        cells = {}
        for p in d.get("panels", []):
            g = p.get("gridPos", {})
            assert 0 <= g.get("x", -1) and g.get("x", 0) + g.get("w", 0) <= 24, f"{where}: panel {p.get('id')} gridPos"
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    other = cells.setdefault((x, y), p.get("id"))
                    assert other == p.get("id"), f"{where}: panels {other} and {p.get('id')} overlap at {(x, y)}"
        panels = query_panels(d)
        assert panels, where
        for p in panels:
            at = f"{where}: panel {p['id']} {p.get('title')!r}"
            assert p.get("title"), at
            assert p["type"] in ("timeseries", "stat", "table", "bargauge", "gauge", "state-timeline"), at
            assert {"x", "y", "w", "h"} <= p.get("gridPos", {}).keys(), at
            assert p.get("datasource", {}).get("uid") == "${datasource}", at
            targets = p.get("targets") or []
            assert targets, f"{at}: no targets"
            assert len({t.get("refId") for t in targets}) == len(targets), f"{at}: refIds"
            for t in targets:
                assert t.get("expr", "").strip(), f"{at}: target {t.get('refId')} without expr"
                assert t.get("datasource", {}).get("uid") == "${datasource}", at
                # Every variable is defined (or Grafana's); none is left unreplaced.
                names = {n: (n, False) for n in vs}
                try:
                    out = substitute(t["expr"], names, set())
                except KeyError as e:
                    raise AssertionError(f"{at}: undefined variable {e} in {t['expr']}") from None
                assert "$__" not in out, f"{at}: {out}"
                if re.search(r"\b(rate|irate|increase)\(", t["expr"]):
                    assert re.search(r"\[\$__(rate_interval|range|interval)\]", t["expr"]), (
                        f"{at}: rates over a fixed range: {t['expr']}"
                    )
        for a in prometheus_annotations(d):
            at = f"{where}: annotation {a.get('name')!r}"
            assert a.get("name") and a["datasource"].get("uid") == "${datasource}", at
            # Grafana reads `target` (10 and later) or the fields beside it (before): the same query in both.
            expr = a.get("expr", "")
            assert expr.strip() and a.get("target", {}).get("expr") == expr, f"{at}: expr and target.expr"
            try:
                substitute(expr, {n: (n, False) for n in vs}, set())
            except KeyError as e:
                raise AssertionError(f"{at}: undefined variable {e} in {expr}") from None


def deploy_annotations(d):
    """The SLO detail dashboard's annotation of deploys from the agent's API."""
    return [a for a in d["annotations"]["list"] if a.get("name") == "Deploys"]


def test_deploys_are_annotated_from_the_agents_api():
    d = load(next(p for p in DASHBOARDS if p.name == "slo-detail.json"))
    [a] = deploy_annotations(d)
    vs = variables(d)
    source = a["datasource"]["uid"].strip("${}")
    assert vs[source]["type"] == "datasource" and vs[source]["query"] == "yesoreyeram-infinity-datasource"
    t = a["target"]
    assert (t["type"], t["source"], t["url"]) == ("json", "url", "/api/v1/annotations")
    params = {p["key"]: p["value"] for p in t["url_options"]["params"]}
    assert params == {"slo": "${slo}", "from": "${__from}", "to": "${__to}"}
    # The columns Grafana makes annotations of, read from the fields the agent answers with.
    assert {c["text"]: c["selector"] for c in t["columns"]} == {
        k: k for k in ("time", "timeEnd", "title", "text", "tags")
    }


class Sink(http.server.BaseHTTPRequestHandler):
    """A webhook receiver that accepts everything."""

    received = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Sink.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def dashboard_agent_config(port, logs_glob, sink_port):
    """The file source, a Firehose source, and a webhook receiver for every alert. The
    CloudFront lines name no service: the source's `service` gives them the SLOs' one, which
    the live signals need (they watch services, not SLOs). The live signals close a minute one
    minute after its end (the default is five), so the backfilled minutes are scored at once
    and the live ones within the test, and count checkout conversions (the generated lines have
    `/checkout` and `/checkout/pay`). The outage verdict looks at the last 2 minutes (the
    default is 10), so the five backfilled minutes hold a window and a baseline before it. A
    journey of the service reads the agent's own API every 10 s; an admin token records the
    deploy and makes the freeze override."""
    return (
        f"specs: [{SPECS_10}]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 200ms\npoll_interval: 50ms\n"
        "signals:\n  lateness: 1m\n  business: [{name: checkout, path: \"/checkout*\", status: 2xx}]\n"
        "outage: {window: 2m}\n"
        "api:\n  tokens:\n    - {name: ops, role: admin, token_file: admin.key}\n"
        "journeys:\n"
        f"  - name: {JOURNEY}\n    service: {SERVICE}\n    interval: 10s\n    timeout: 5s\n    steps:\n"
        f"      - {{name: ready, request: {{url: \"http://127.0.0.1:{port}/readyz\"}}, expect: {{status: [200]}}}}\n"
        f"      - {{name: slos, request: {{url: \"http://127.0.0.1:{port}/api/v1/slos\"}}, expect: {{status: [200]}}}}\n"
        "sources:\n"
        f"  - name: cloudfront\n    type: file\n    paths: [\"{logs_glob}\"]\n    format: cloudfront\n"
        f"    service: {SERVICE}\n"
        "  - name: edge-logs\n    type: firehose\n    token_file: fh.key\n"
        "    log_groups: [{log_group: \"/aws/lambda/*\", format: lambda, service: pay}]\n"
        "notify:\n"
        f"  external_url: http://127.0.0.1:{port}\n"
        "  receivers:\n"
        f"    - {{name: sink, type: webhook, url: \"http://127.0.0.1:{sink_port}/hook\"}}\n"
        "  routes:\n"
        "    - {receiver: sink}\n"
    )


class Traffic:
    """CloudFront log lines stamped with the current time, 15 % of them 5xx:
    generated lines used as templates, re-timed and some made to fail."""

    FAIL = 0.15

    def __init__(self, path, templates_file):
        lines = templates_file.read_text().splitlines(keepends=True)
        self.header = "".join(ln for ln in lines if ln.startswith("#"))
        self.templates = [ln.rstrip("\n").split("\t") for ln in lines if not ln.startswith("#")]
        self.path = path
        self.rng = random.Random(20261122)
        self.i = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def line(self, at):
        cols = list(self.templates[self.i % len(self.templates)])
        self.i += 1
        t = time.gmtime(at)
        cols[0], cols[1] = time.strftime("%Y-%m-%d", t), time.strftime("%H:%M:%S", t)
        if self.rng.random() < self.FAIL:
            cols[8] = self.rng.choice(["502", "503", "503", "504"])
            cols[13] = cols[22] = cols[28] = "Error"
        return "\t".join(cols) + "\n"

    def backfill(self, seconds, n):
        """The header, `n` lines over the last `seconds`, and one line the decoder rejects."""
        now = time.time()
        with open(self.path, "w") as f:
            f.write(self.header)
            for k in range(n):
                f.write(self.line(now - seconds + seconds * k / n))
            f.write("garbage without tabs\n")

    def _run(self):
        with open(self.path, "a") as f:
            while not self.stop.wait(0.2):
                now = time.time()
                f.write("".join(self.line(now - self.rng.random()) for _ in range(10)))
                f.flush()

    def start(self):
        self.thread.start()

    def close(self):
        self.stop.set()
        if self.thread.ident is not None:
            self.thread.join(timeout=10)


def prom_query(api, q):
    """(result, error): Prometheus's answer to an instant query."""
    try:
        r = get_json(api + "query?query=" + urllib.parse.quote(q))
    except Exception as e:  # noqa: BLE001 - an HTTP 400 carries Prometheus's parse error
        body = getattr(e, "read", lambda: b"")()
        return None, f"{e}: {body.decode(errors='replace')}"
    if r.get("status") != "success":
        return None, json.dumps(r)
    return r["data"]["result"], None


def has_numbers(result):
    return bool(result) and any(math.isfinite(float(r["value"][1])) for r in result)


def queries(instance):
    """Every (where, query, may_be_empty, expected label value) of every
    dashboard, for each set of variable values; each distinct query once."""
    concrete = {"slo": SLO, "service": SERVICE, "instance": instance, "signal": SIGNAL, "dimension": DIMENSION,
                "origin": ORIGIN}
    out = []
    seen = set()

    def add(where, q, empty_ok, expect):
        if q not in seen:
            seen.add(q)
            out.append((where, q, empty_ok, expect))

    for path in DASHBOARDS:
        d = load(path)
        vs = {n: v for n, v in variables(d).items() if v["type"] != "datasource"}
        multi = {n for n, v in vs.items() if v.get("multi") or v.get("includeAll")}
        value_sets = [("", {n: (concrete[n], False) for n in vs})]
        with_all = {n for n, v in vs.items() if v.get("includeAll")}
        if with_all:
            value_sets.append((
                " [All]",
                {n: ((vs[n].get("allValue") or ".*"), True) if n in with_all else (concrete[n], False) for n in vs},
            ))
        for label, values in value_sets:
            for n, v in vs.items():
                m = LABEL_VALUES.match(variable_query(v))
                sel = substitute(m.group(1), values, multi)
                q = f"count by ({m.group(2)}) ({sel})"
                add(f"{path.name}{label}: variable {n}", q, False, (m.group(2), concrete[n]))
            for p in query_panels(d):
                for t in p["targets"]:
                    q = substitute(t["expr"], values, multi)
                    empty_ok = any(metric in q for metric in EMPTY_BY_DESIGN)
                    where = f"{path.name}{label}: panel {p['id']} {p['title']!r} target {t['refId']}"
                    add(where, q, empty_ok, None)
            for a in prometheus_annotations(d):
                q = substitute(a["expr"], values, multi)
                add(f"{path.name}{label}: annotation {a['name']!r}", q, any(m in q for m in EMPTY_BY_DESIGN), None)
    return out


def merged_tables(instance):
    """(where, [queries]) of each table panel that merges its targets into rows."""
    concrete = {"slo": SLO, "service": SERVICE, "instance": instance, "signal": SIGNAL, "dimension": DIMENSION,
                "origin": ORIGIN}
    for path in DASHBOARDS:
        d = load(path)
        vs = {n: v for n, v in variables(d).items() if v["type"] != "datasource"}
        multi = {n for n, v in vs.items() if v.get("multi") or v.get("includeAll")}
        values = {n: (concrete[n], False) for n in vs}
        for p in query_panels(d):
            if p["type"] == "table" and any(t["id"] == "merge" for t in p.get("transformations", [])):
                yield (f"{path.name}: panel {p['id']} {p['title']!r}",
                       [substitute(t["expr"], values, multi) for t in p["targets"]])


def change_freeze_and_deploy(agent, api):
    """Once Prometheus holds the service's freeze and deploy gauges: a deploy recorded, and the
    freeze turned the other way by hand, so the annotations' `changes()` see one change each."""
    for name in ("slo_agent_freeze_frozen", "slo_agent_deploy_last_timestamp_seconds"):
        wait_until(lambda: prom_query(api, f'{name}{{service="{SERVICE}"}}')[0], timeout=30,
                   what=f"{name} scraped")
    auth = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}
    status, answer = post(f"{agent.url}/api/v1/deploys", json.dumps({"service": SERVICE, "version": "e2e-1"}).encode(),
                          auth)
    assert status == 201, answer
    frozen = agent.get(f"/api/v1/freeze/verdict?service={SERVICE}")["frozen"]
    body = {"service": SERVICE, "action": "unfreeze" if frozen else "freeze", "reason": "e2e dashboards",
            "expires_in": "1h"}
    status, answer = post(f"{agent.url}/api/v1/freeze/overrides", json.dumps(body).encode(), auth)
    assert status == 201, answer


def test_every_panel_query_returns_data(tmp_path, agent_factory):
    prometheus = need("prometheus")
    logs = tmp_path / "logs"
    logs.mkdir()
    templates = tmp_path / "templates.log"
    r = run_bin("generate", "--lines", 3000, "--date", time.strftime("%Y-%m-%d", time.gmtime()), "--out", templates)
    assert r.returncode == 0, r.stderr
    traffic = Traffic(logs / "cf.log", templates)
    traffic.backfill(300, 1500)  # five minutes of traffic already there: every window has events

    Sink.received = []
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    (tmp_path / "fh.key").write_text(KEY + "\n")
    (tmp_path / "admin.key").write_text(ADMIN + "\n")
    port = free_port()
    prom = None
    try:
        try:
            agent = agent_factory(dashboard_agent_config(port, logs / "*.log", sink.server_address[1]), port)
        except AssertionError as e:
            raise AssertionError(f"{e}\nagent log:\n{(tmp_path / 'agent.log').read_text()[-2000:]}") from None
        traffic.start()
        # One Firehose delivery, so push requests have a `counted` result.
        body = json.dumps({"requestId": "dash-1", "timestamp": int(time.time() * 1000),
                           "records": [{"data": base64.b64encode(subscription_record(20, 2)).decode()}]}).encode()
        status, answer = post(f"{agent.url}/ingest/firehose/edge-logs", gzip.compress(body),
                              {"X-Amz-Firehose-Request-Id": "dash-1", "X-Amz-Firehose-Access-Key": KEY,
                               "Content-Type": "application/json", "Content-Encoding": "gzip"})
        assert status == 200, answer

        r = run_bin("rules", "--specs", SPECS_10, "--out", tmp_path / "rules")
        assert r.returncode == 0, r.stderr
        rules = sorted((tmp_path / "rules").glob("*.rules.yaml"))
        prom, api = start_prometheus(tmp_path, prometheus, port, rules)
        instance = f"127.0.0.1:{port}"
        wait_until(lambda: prom_query(api, "up")[0], timeout=60, what="a first scrape")
        change_freeze_and_deploy(agent, api)

        pending = queries(instance)
        errors, empty = [], []
        deadline = time.monotonic() + 90
        while pending:
            still = []
            for item in pending:
                where, q, empty_ok, expect = item
                result, err = prom_query(api, q)
                if err:
                    errors.append(f"{where}\n    {q}\n    {err}")
                elif expect and expect[1] not in {r["metric"].get(expect[0]) for r in result}:
                    still.append(item)
                elif not has_numbers(result) and not (empty_ok and not result):
                    still.append(item)
            pending = still
            if errors or not pending or time.monotonic() > deadline:
                break
            time.sleep(2)
        empty = [f"{where}\n    {q}" for where, q, _, _ in pending]
        assert not errors and not empty, (
            f"{len(errors)} queries failed, {len(empty)} returned no data within 90 s:\n"
            + "\n".join(["ERROR " + e for e in errors] + ["EMPTY " + e for e in empty])
            + f"\n(webhook requests received: {len(Sink.received)}; agent log tail:\n{agent.logs()[-2000:]})"
        )
        # Grafana's merge joins rows on equal label values: every target of a
        # merged table must answer with the same label names.
        for where, qs in merged_tables(instance):
            # A table whose every target reads a metric absent by design may have no rows at all.
            keys = {q: {frozenset(r["metric"]) for r in prom_query(api, q)[0]} for q in qs}
            labels = set().union(*keys.values())
            all_empty_ok = all(any(metric in q for metric in EMPTY_BY_DESIGN) for q in qs)
            assert len(labels) == 1 or (not labels and all_empty_ok), f"{where}: targets differ in labels: {keys}"
    finally:
        traffic.close()
        if prom is not None:
            prom.terminate()
            prom.wait(timeout=30)
        sink.shutdown()
