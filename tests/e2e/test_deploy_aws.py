"""deploy/aws/: the CloudFormation templates pass cfn-lint (the role's with
the shipped policy written into it, so IAM's own lists check its actions and
conditions), the Terraform parses (python-hcl2: syntax and structure only;
no Terraform provider runs here) and says what the README says, and the
burn-rate alarms watch a metric, namespace and dimensions the built agent
really exports."""

import json
import re
import shutil
import signal
import subprocess
import time

import pytest
import yaml

from conftest import BIN, IN_CI, ROOT, free_port, http_get, wait_until

AWS = ROOT / "deploy" / "aws"
TEMPLATES = sorted(AWS.glob("*.cfn.yaml"))


def cfn_lint():
    path = shutil.which("cfn-lint")
    if path is None:
        if IN_CI:
            pytest.fail("cfn-lint is missing in CI (tests/run installs it from PyPI)")
        pytest.skip("cfn-lint is not installed (pip install cfn-lint)")
    return path


def hcl2():
    try:
        import hcl2 as module
    except ImportError:
        if IN_CI:
            pytest.fail("python-hcl2 is missing in CI (tests/run installs it from PyPI)")
        pytest.skip("python-hcl2 is not installed (pip install python-hcl2)")
    return module


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (`!Ref x` → {"Ref": x})."""


def _tag(loader, suffix, node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _tag)


def template(name):
    return yaml.load((AWS / name).read_text(), Loader=CfnLoader)


def unq(s):
    return s[1:-1] if isinstance(s, str) and len(s) >= 2 and s[0] == s[-1] == '"' else s


def test_every_cloudformation_template_passes_cfn_lint(tmp_path):
    lint = cfn_lint()
    assert {t.name for t in TEMPLATES} == {"iam-role.cfn.yaml", "rollback-ecs.cfn.yaml", "rollback-codedeploy.cfn.yaml"}
    r = subprocess.run([lint, *map(str, TEMPLATES)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    # The role with the shipped policy (what `slo-agent iam-policy` prints for
    # deploy/aws/agent.yaml) in place of its parameter: cfn-lint checks each
    # action against IAM's list of actions and each condition operator.
    policy = json.loads((AWS / "policy.json").read_text())
    text = (AWS / "iam-role.cfn.yaml").read_text()
    assert "PolicyDocument: !Ref AgentPolicy" in text
    inlined = text.replace("PolicyDocument: !Ref AgentPolicy", "PolicyDocument: " + json.dumps(policy))
    (tmp_path / "role.cfn.yaml").write_text(inlined)
    r = subprocess.run([lint, "--ignore-checks", "W2001", "--", str(tmp_path / "role.cfn.yaml")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    # A wrong action is caught that way (the check is not vacuous).
    policy["Statement"][0]["Action"] = ["logs:FilterLogEventz"]
    (tmp_path / "bad.cfn.yaml").write_text(text.replace("PolicyDocument: !Ref AgentPolicy",
                                                        "PolicyDocument: " + json.dumps(policy)))
    r = subprocess.run([lint, "--ignore-checks", "W2001", "--", str(tmp_path / "bad.cfn.yaml")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "filterlogeventz" in r.stdout.lower(), r.stdout


def test_the_role_trusts_irsa_and_pod_identity_for_the_agents_service_account_only():
    role = template("iam-role.cfn.yaml")["Resources"]["AgentRole"]["Properties"]
    with_irsa, pod_identity_only = role["AssumeRolePolicyDocument"]["Fn::If"][1:]
    trust = with_irsa["Fn::Sub"]
    values = {"AWS::Partition": "aws", "AWS::AccountId": "123456789012",
              "OidcIssuer": "oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE", "Namespace": "slo-agent",
              "ServiceAccount": "slo-agent"}
    trust = json.loads(re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], trust))
    by_sid = {s["Sid"]: s for s in trust["Statement"]}
    assert by_sid["EksPodIdentity"]["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert sorted(by_sid["EksPodIdentity"]["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
    irsa = by_sid["EksIrsa"]
    assert irsa["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert irsa["Principal"]["Federated"] == (
        "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE")
    assert irsa["Condition"]["StringEquals"] == {
        "oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE:sub": "system:serviceaccount:slo-agent:slo-agent",
        "oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE:aud": "sts.amazonaws.com",
    }
    assert pod_identity_only["Statement"] == [by_sid["EksPodIdentity"]]
    assert role["Policies"] == [{"PolicyName": "slo-agent", "PolicyDocument": {"Ref": "AgentPolicy"}}]
    params = template("iam-role.cfn.yaml")["Parameters"]
    assert (params["Namespace"]["Default"], params["ServiceAccount"]["Default"]) == ("slo-agent", "slo-agent")


def test_the_terraform_parses_and_says_the_same():
    h = hcl2()
    role = h.loads((AWS / "terraform" / "role" / "main.tf").read_text())
    variables = {unq(k): v for v in role["variable"] for k, v in v.items()}
    assert unq(variables["namespace"]["default"]) == "slo-agent"
    assert unq(variables["service_account"]["default"]) == "slo-agent"
    data = {unq(k): v for d in role["data"] for k, v in d.items()}
    trust = data["aws_iam_policy_document"]['"trust"']
    pod = trust["statement"][0]
    assert [unq(a) for a in pod["actions"]] == ["sts:AssumeRole", "sts:TagSession"]
    assert [unq(i) for i in pod["principals"][0]["identifiers"]] == ["pods.eks.amazonaws.com"]
    irsa = trust["dynamic"][0]['"statement"']["content"][0]
    assert [unq(a) for a in irsa["actions"]] == ["sts:AssumeRoleWithWebIdentity"]
    assert unq(irsa["principals"][0]["type"]) == "Federated"
    sub = next(c for c in irsa["condition"] if unq(c["variable"]).endswith(":sub"))
    assert [unq(v) for v in sub["values"]] == ["system:serviceaccount:${var.namespace}:${var.service_account}"]
    resources = {unq(k): v for r in role["resource"] for k, v in r.items()}
    assert resources["aws_iam_role_policy"]['"slo_agent"']["policy"] == "${file(var.policy_file)}"
    assert "aws_eks_pod_identity_association" in resources

    rollback = h.loads((AWS / "terraform" / "rollback" / "main.tf").read_text())
    resources = {unq(k): v for r in rollback["resource"] for k, v in r.items()}
    alarm = resources["aws_cloudwatch_metric_alarm"]['"fast_burn"']
    windows = []
    for q in alarm["metric_query"]:
        for m in q.get("metric", []):
            assert unq(m["metric_name"]) == "BurnRate"
            assert set(m["dimensions"]) == {"Service", "SLO", "Window"}
            windows.append(unq(m["dimensions"]["Window"]))
    assert sorted(windows) == ["1h", "5m"]
    ecs = resources["aws_ecs_service"]['"app"']
    assert ecs["alarms"][0]["rollback"] is True and ecs["alarms"][0]["enable"] is True
    group = resources["aws_codedeploy_deployment_group"]['"app"']
    assert [unq(e) for e in group["auto_rollback_configuration"][0]["events"]] == [
        "DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]
    assert group["alarm_configuration"][0]["enabled"] is True


def alarm_metrics():
    """(namespace default, metric, dimension names, window) of every metric the
    CloudFormation alarms and the Terraform alarm watch."""
    out = []
    for name in ("rollback-ecs.cfn.yaml", "rollback-codedeploy.cfn.yaml"):
        t = template(name)
        ns = t["Parameters"]["Namespace"]["Default"]
        for m in t["Resources"]["FastBurnAlarm"]["Properties"]["Metrics"]:
            if "MetricStat" not in m:
                continue
            metric = m["MetricStat"]["Metric"]
            assert metric["Namespace"] == {"Ref": "Namespace"}
            dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
            out.append((ns, metric["MetricName"], sorted(dims), dims["Window"]))
    ecs = template("rollback-ecs.cfn.yaml")["Resources"]["Service"]["Properties"]["DeploymentConfiguration"]
    assert ecs["Alarms"] == {"AlarmNames": [{"Ref": "FastBurnAlarm"}], "Enable": True, "Rollback": True}
    group = template("rollback-codedeploy.cfn.yaml")["Resources"]["DeploymentGroup"]["Properties"]
    assert group["AlarmConfiguration"]["Alarms"] == [{"Name": {"Ref": "FastBurnAlarm"}}]
    assert "DEPLOYMENT_STOP_ON_ALARM" in group["AutoRollbackConfiguration"]["Events"]
    return out


def test_the_alarms_watch_what_the_agent_exports(tmp_path):
    watched = alarm_metrics()
    assert len(watched) == 4
    # The agent, exporting EMF to a file: a minute of failures just now burns both windows.
    now = time.time()
    with open(tmp_path / "app.log", "w") as f:
        for i in range(120):
            ts = int((now - 50 * 60 + i * 25) * 1000)
            status = 503 if i >= 115 else 200
            f.write(json.dumps({"ts": ts, "service": "checkout", "path": "/pay", "status": status}) + "\n")
    (tmp_path / "slos.yaml").write_text(
        "apiVersion: slo-agent/v1\nkind: SLO\nmetadata: {name: checkout-availability}\nspec:\n  service: checkout\n"
        "  objective: 99\n  window: 28d\n  indicator: {source: ndjson, good: {status: \"< 500\"}}\n")
    port = free_port()
    (tmp_path / "agent.yaml").write_text(
        f"specs: [slos.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 200ms\npoll_interval: 50ms\n"
        "sources:\n  - {name: app, type: file, paths: [app.log], format: ndjson}\n"
        "export:\n  cloudwatch: {mode: emf, emf_file: emf.log, interval: 1s}\n")
    log = open(tmp_path / "agent.log", "w")
    proc = subprocess.Popen([BIN, "run", "--config", str(tmp_path / "agent.yaml")], stdout=log,
                            stderr=subprocess.STDOUT)
    emf = tmp_path / "emf.log"

    def burns():
        if not emf.exists():
            return None
        docs = [json.loads(l) for l in emf.read_text().splitlines() if l]
        found = {d.get("Window") for d in docs if "BurnRate" in d}
        return docs if {"5m", "1h"} <= found else None

    try:
        wait_until(lambda: http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200, what="agent ready")
        docs = wait_until(burns, timeout=60, what="burn rates over 5m and 1h in the EMF file")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()
    for ns, metric, dims, window in watched:
        match = [d for d in docs if metric in d and d.get("Window") == window
                 and any(m["Name"] == metric and d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == ns
                         and sorted(d["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) == dims
                         for m in d["_aws"]["CloudWatchMetrics"][0]["Metrics"])]
        assert match, f"the agent exports no {ns}/{metric} over {dims} with Window={window}"
        assert match[-1]["Service"] == "checkout" and match[-1]["SLO"] == "checkout-availability"
