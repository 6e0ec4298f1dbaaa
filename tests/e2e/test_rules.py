"""Rules from `slo-agent rules` loaded into a real Prometheus that scrapes a
running agent: every recording rule the Sloth dashboards read evaluates to a
number. (The rules in `alerts/` are for `slo-specs/`, whose hosts the
generated traffic does not use; this test generates rules for the benchmark
specs, which it does, through the same command.)"""

import math
import urllib.parse

from conftest import free_port, generate, get_json, need, run_bin, start_prometheus, utc_date, wait_until

from test_agent import SPECS_10, agent_config, wait_ingested

SLO = "bench-storefront-availability"  # objective 99.5 %


def test_generated_rules_evaluate_over_a_live_agent(tmp_path, agent_factory):
    prometheus = need("prometheus")
    logs = tmp_path / "logs"
    logs.mkdir()
    generate(logs / "a.log", 2000, utc_date(1))
    port = free_port()
    agent = agent_factory(agent_config(SPECS_10, logs / "*.log", port), port)
    wait_ingested(agent, 2002)

    r = run_bin("rules", "--specs", SPECS_10, "--out", tmp_path / "rules")
    assert r.returncode == 0, r.stderr
    assert "10 SLOs in 1 rule files" in r.stdout + r.stderr, r.stdout + r.stderr
    rules = sorted(str(p) for p in (tmp_path / "rules").glob("*.rules.yaml"))
    prom, api = start_prometheus(tmp_path, prometheus, port, rules)
    try:
        def query(q):
            r = get_json(api + "query?query=" + urllib.parse.quote(q))
            assert r["status"] == "success", r
            return r["data"]["result"]

        # Every rule group loaded, none with an evaluation error.
        def groups_healthy():
            groups = get_json(api + "rules")["data"]["groups"]
            bad = [r for g in groups for r in g["rules"] if r.get("health") == "err"]
            assert not bad, bad
            return groups if len(groups) >= 1 and all(g.get("lastEvaluation", "").startswith("2") for g in groups) else None

        wait_until(groups_healthy, timeout=60, what="Prometheus to load and evaluate the rules")
        # The counters must rise while Prometheus watches: more traffic arrives.
        wait_until(lambda: query(f'slo_agent_slo_events_total{{slo="{SLO}"}}'), timeout=60,
                   what="a first scrape")
        # Another day, so another file (the same content would be a copy of a.log).
        generate(logs / "b.log", 2000, utc_date(2))
        wait_ingested(agent, 4004)

        def numbers(q):
            res = query(q)
            vals = [float(r["value"][1]) for r in res]
            return res if vals and all(math.isfinite(v) for v in vals) else None

        sel = f'{{sloth_slo="{SLO}"}}'
        ratio = wait_until(lambda: numbers("slo:sli_error:ratio_rate5m" + sel), timeout=60, what="the 5m error ratio")
        assert 0.0 <= float(ratio[0]["value"][1]) <= 1.0
        assert ratio[0]["metric"]["sloth_service"] == "shop"
        objective = numbers("slo:objective:ratio" + sel)
        assert objective and float(objective[0]["value"][1]) == 0.995
        for q in ["slo:error_budget:ratio", "slo:current_burn_rate:ratio", "slo:period_burn_rate:ratio",
                  "slo:period_error_budget_remaining:ratio"]:
            assert wait_until(lambda: numbers(q + sel), timeout=30, what=q)
    finally:
        prom.terminate()
        prom.wait(timeout=30)
