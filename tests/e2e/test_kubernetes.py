"""The Kubernetes manifests of deploy/kubernetes/ (docs/deploy.md): every overlay rendered by
`kubectl kustomize` validates against the schemas of a current Kubernetes release
(PyPI kubernetes-validate, strict: unknown fields are errors); the Prometheus Operator kinds
against schemas written here from the CRD fields the manifests use, and the rules through
promtool. Every pod is locked down (non-root, read-only root, no privilege escalation, no
capabilities, RuntimeDefault seccomp), sized, probed, and mounts what its agent.yaml names;
the agent.yaml and specs inside the rendered ConfigMaps pass the built binary's own checks;
the generated parts (specs copy, PrometheusRule) are what the current binary generates; and
the agent reloads specs that Kubernetes updates in place the way the kubelet does it."""

import importlib
import json
import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import BIN, IN_CI, ROOT, free_port, metric_value, need, run_bin, wait_until

K8S = ROOT / "deploy" / "kubernetes"
OVERLAYS = ["daemonset", "sidecar", "central"]
# Rendered on their own: the rules without a central agent, and the restore Job.
EXTRA = ["rules", "overlays/central/restore"]
# The newest Kubernetes minor kubernetes-validate ships schemas for (tests/run installs >= 1.37).
KUBERNETES_VERSION = "1.37.0"
AGENT_PORT = 9464


def need_module(name):
    """A Python peer; in CI its absence fails the test, elsewhere skips it loudly."""
    try:
        return importlib.import_module(name)
    except ImportError:
        if IN_CI:
            pytest.fail(f"Python package {name} is missing in CI (tests/run installs it)")
        print(f"\nSKIPPING: Python package {name} is not installed (pip install kubernetes-validate)")
        pytest.skip(f"Python package {name} is not installed")


def render(path):
    """`kubectl kustomize` of a directory under deploy/kubernetes: the list of documents."""
    kubectl = need("kubectl")
    yaml = need_module("yaml")
    r = subprocess.run([kubectl, "kustomize", str(K8S / path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"kubectl kustomize {path}: {r.stderr}"
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    assert docs, f"{path} renders nothing"
    return docs


def one(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[d['metadata']['name'] for d in found]}"
    return found[0]


def pod_templates(docs):
    """(document, pod spec) of every workload."""
    out = []
    for d in docs:
        if d["kind"] in ("Deployment", "DaemonSet", "StatefulSet", "Job"):
            out.append((d, d["spec"]["template"]["spec"]))
        elif d["kind"] == "CronJob":
            out.append((d, d["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
    return out


def agent_container(pod):
    """The slo-agent container of a pod spec that runs `slo-agent run` (a native sidecar in
    initContainers counts)."""
    found = [c for c in pod.get("containers", []) + pod.get("initContainers", []) if (c.get("args") or [])[:1] == ["run"]]
    assert len(found) == 1, f"expected one container running the agent, found {[c['name'] for c in found]}"
    return found[0]


# --- schemas of the Prometheus Operator kinds ---------------------------------------------
# Written from the monitoring.coreos.com/v1 CRDs (ServiceMonitor, PrometheusRule) for the fields
# these manifests use, with the CRDs' required fields, enums and patterns; anything else is
# refused (additionalProperties: false), as the API server's structural pruning would drop it.

DURATION = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
DNS_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": DNS_NAME, "maxLength": 253},
        "namespace": {"type": "string", "pattern": DNS_NAME},
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
    },
    "additionalProperties": False,
}
SECRET_KEY = {
    "type": "object",
    "required": ["key", "name"],
    "properties": {"key": {"type": "string", "minLength": 1}, "name": {"type": "string", "minLength": 1},
                   "optional": {"type": "boolean"}},
    "additionalProperties": False,
}
LABEL_SELECTOR = {
    "type": "object",
    "properties": {
        "matchLabels": STRING_MAP,
        "matchExpressions": {"type": "array", "items": {
            "type": "object", "required": ["key", "operator"],
            "properties": {"key": {"type": "string"}, "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                           "values": {"type": "array", "items": {"type": "string"}}},
            "additionalProperties": False}},
    },
    "additionalProperties": False,
}
ACTIONS = ["replace", "keep", "drop", "hashmod", "labelmap", "labeldrop", "labelkeep", "lowercase", "uppercase",
           "keepequal", "dropequal"]
RELABEL = {
    "type": "object",
    "properties": {
        "action": {"enum": ACTIONS + ["Replace", "Keep", "Drop", "HashMod", "LabelMap", "LabelDrop", "LabelKeep",
                                      "Lowercase", "Uppercase", "KeepEqual", "DropEqual"]},
        "sourceLabels": {"type": "array", "items": {"type": "string", "pattern": LABEL_NAME}},
        "separator": {"type": "string"},
        "targetLabel": {"type": "string", "minLength": 1},
        "regex": {"type": "string"},
        "replacement": {"type": "string"},
        "modulus": {"type": "integer"},
    },
    "additionalProperties": False,
    # The operator refuses a replace without a target label (the default action is replace).
    "if": {"properties": {"action": {"enum": ["replace", "Replace"]}}},
    "then": {"required": ["targetLabel"]},
}
SERVICE_MONITOR = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "required": ["endpoints", "selector"],
            "properties": {
                "selector": LABEL_SELECTOR,
                "namespaceSelector": {"type": "object", "properties": {
                    "any": {"type": "boolean"}, "matchNames": {"type": "array", "items": {"type": "string"}}},
                    "additionalProperties": False},
                "jobLabel": {"type": "string"},
                "attachMetadata": {"type": "object", "properties": {"node": {"type": "boolean"}},
                                   "additionalProperties": False},
                "endpoints": {"type": "array", "minItems": 1, "items": {
                    "type": "object",
                    "required": ["port"],
                    "properties": {
                        "port": {"type": "string", "minLength": 1},
                        "path": {"type": "string", "pattern": "^/"},
                        "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
                        "interval": {"type": "string", "pattern": DURATION},
                        "scrapeTimeout": {"type": "string", "pattern": DURATION},
                        "honorLabels": {"type": "boolean"},
                        "authorization": {"type": "object", "properties": {
                            "type": {"type": "string"}, "credentials": SECRET_KEY}, "additionalProperties": False},
                        "relabelings": {"type": "array", "items": RELABEL},
                        "metricRelabelings": {"type": "array", "items": RELABEL},
                    },
                    "additionalProperties": False,
                }},
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}
RULE = {
    "type": "object",
    "required": ["expr"],
    "properties": {
        "record": {"type": "string", "pattern": r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"},
        "alert": {"type": "string", "minLength": 1},
        "expr": {"anyOf": [{"type": "string", "minLength": 1}, {"type": "integer"}]},
        "for": {"type": "string", "pattern": DURATION},
        "keep_firing_for": {"type": "string", "pattern": DURATION},
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
    },
    "additionalProperties": False,
    "oneOf": [{"required": ["record"], "not": {"required": ["for"]}}, {"required": ["alert"]}],
}
PROMETHEUS_RULE = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "required": ["groups"],
            "properties": {"groups": {"type": "array", "minItems": 1, "items": {
                "type": "object",
                "required": ["name", "rules"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "interval": {"type": "string", "pattern": DURATION},
                    "rules": {"type": "array", "minItems": 1, "items": RULE},
                },
                "additionalProperties": False,
            }}},
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}
CRD_SCHEMAS = {("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR,
               ("monitoring.coreos.com/v1", "PrometheusRule"): PROMETHEUS_RULE}


def validate(doc):
    """Raise if `doc` does not validate: the Kubernetes schemas (strict), or ours for the CRDs."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in CRD_SCHEMAS:
        jsonschema = need_module("jsonschema")
        jsonschema.validate(doc, CRD_SCHEMAS[key], cls=jsonschema.Draft202012Validator)
        if doc["kind"] == "PrometheusRule":
            names = [g["name"] for g in doc["spec"]["groups"]]
            assert len(names) == len(set(names)), "PrometheusRule group names must be unique"
        return
    kv = need_module("kubernetes_validate")
    kv.validate(doc, KUBERNETES_VERSION, strict=True)


# --- the tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [f"overlays/{o}" for o in OVERLAYS] + EXTRA)
def test_every_rendered_manifest_validates(path):
    docs = render(path)
    for d in docs:
        try:
            validate(d)
        except Exception as e:  # noqa: BLE001 - name the document that failed
            pytest.fail(f"{path}: {d['kind']}/{d['metadata'].get('name')} does not validate: {e}")
    kinds = {d["kind"] for d in docs}
    expected = {
        "overlays/daemonset": {"Namespace", "ServiceAccount", "ConfigMap", "DaemonSet", "Service", "ServiceMonitor",
                               "NetworkPolicy"},
        "overlays/sidecar": {"Namespace", "ServiceAccount", "ConfigMap", "Deployment", "Service", "ServiceMonitor",
                             "NetworkPolicy", "PodDisruptionBudget"},
        "overlays/central": {"Namespace", "ServiceAccount", "ConfigMap", "Deployment", "Service", "ServiceMonitor",
                             "NetworkPolicy", "PersistentVolumeClaim", "CronJob", "PrometheusRule"},
        "rules": {"PrometheusRule"},
        "overlays/central/restore": {"Job"},
    }[path]
    assert kinds == expected, f"{path}: kinds {sorted(kinds)}"


def test_the_validators_refuse_broken_manifests():
    """The checks above can fail: a misspelt field, a wrong type, a bad CRD field are caught."""
    docs = render("overlays/central")
    deployment = json.loads(json.dumps(one(docs, "Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFileSystem"] = True  # misspelt, misplaced
    with pytest.raises(Exception):
        validate(deployment)
    deployment = json.loads(json.dumps(one(docs, "Deployment")))
    deployment["spec"]["replicas"] = "one"
    with pytest.raises(Exception):
        validate(deployment)
    monitor = json.loads(json.dumps(one(docs, "ServiceMonitor")))
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    with pytest.raises(Exception):
        validate(monitor)
    monitor = json.loads(json.dumps(one(docs, "ServiceMonitor")))
    monitor["spec"]["endpoints"][0]["interval"] = "30 seconds"
    with pytest.raises(Exception):
        validate(monitor)
    rule = json.loads(json.dumps(one(docs, "PrometheusRule")))
    rule["spec"]["groups"][0]["rules"][0].pop("expr")
    with pytest.raises(Exception):
        validate(rule)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_locked_down_sized_and_probed(overlay):
    docs = render(f"overlays/{overlay}")
    workloads = pod_templates(docs)
    assert workloads
    for doc, pod in workloads:
        where = f"{overlay}: {doc['kind']}/{doc['metadata']['name']}"
        psc = pod.get("securityContext", {})
        assert psc.get("runAsNonRoot") is True, where
        assert psc.get("runAsUser", 0) >= 1000 and psc.get("runAsGroup", 0) >= 1000, where
        assert psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        assert pod.get("automountServiceAccountToken") is False, where
        assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC"), where
        for c in pod.get("containers", []) + pod.get("initContainers", []):
            cw = f"{where} container {c['name']}"
            sc = c.get("securityContext", {})
            assert sc.get("readOnlyRootFilesystem") is True, cw
            assert sc.get("allowPrivilegeEscalation") is False, cw
            assert sc.get("privileged", False) is False, cw
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], cw
            assert not sc.get("capabilities", {}).get("add"), cw
            assert sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, cw
            assert "runAsUser" not in sc or sc["runAsUser"] != 0, cw
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c.get("resources", {}).get(kind, {})), f"{cw}: {kind}"
        # Only the DaemonSet reaches into the host, and only to read its log directory.
        for v in pod.get("volumes", []):
            if "hostPath" in v:
                assert overlay == "daemonset", f"{where}: hostPath volume {v['name']}"
                mounts = [m for c in pod["containers"] for m in c.get("volumeMounts", []) if m["name"] == v["name"]]
                assert mounts and all(m.get("readOnly") is True for m in mounts), f"{where}: {v['name']} not read-only"
                assert v["hostPath"]["path"].startswith("/var/log/"), where

    doc, pod = [(d, p) for d, p in workloads if d["kind"] in ("Deployment", "DaemonSet")][0]
    agent = agent_container(pod)
    assert agent["image"].endswith(f":{cargo_version()}"), agent["image"]
    ports = {p["name"]: p["containerPort"] for p in agent["ports"]}
    assert AGENT_PORT in ports.values()

    def probe_target(probe):
        get = probe["httpGet"]
        port = ports.get(get["port"], get["port"])
        return get["path"], port

    assert probe_target(agent["livenessProbe"]) == ("/healthz", AGENT_PORT)
    assert probe_target(agent["startupProbe"]) == ("/healthz", AGENT_PORT)
    if overlay == "sidecar":
        # A sidecar's readiness is the pod's: an agent that cannot commit must not take the
        # service out of its Service (docs/deploy.md, "The sidecar").
        assert "readinessProbe" not in agent
        assert agent.get("restartPolicy") == "Always", "the sidecar is a native sidecar (initContainers)"
    else:
        assert probe_target(agent["readinessProbe"]) == ("/readyz", AGENT_PORT)

    # What the agent mounts: its config, the specs, its tokens, a writable state volume.
    mounts = {m["mountPath"]: m for m in agent["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert agent["args"] == ["run", "--config", "/etc/slo-agent/config/agent.yaml"]
    config_cm = volumes[mounts["/etc/slo-agent/config"]["name"]]["configMap"]["name"]
    assert "agent.yaml" in one(docs, "ConfigMap", config_cm)["data"]
    assert mounts["/etc/slo-agent/config"].get("readOnly") is True
    assert volumes[mounts["/etc/slo-agent/slo-specs"]["name"]]["configMap"]["name"] == "slo-agent-specs"
    assert mounts["/etc/slo-agent/slo-specs"].get("readOnly") is True
    assert volumes[mounts["/etc/slo-agent/tokens"]["name"]]["secret"]["secretName"] == "slo-agent-tokens"
    assert mounts["/etc/slo-agent/tokens"].get("readOnly") is True
    state = mounts["/var/lib/slo-agent"]
    assert not state.get("readOnly")
    state_volume = volumes[state["name"]]
    if overlay == "central":
        claim = state_volume["persistentVolumeClaim"]["claimName"]
        assert one(docs, "PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadWriteOnce"]
        assert doc["spec"]["replicas"] == 1 and doc["spec"]["strategy"]["type"] == "Recreate"
    else:
        assert "emptyDir" in state_volume and state_volume["emptyDir"].get("sizeLimit")
    env = {e["name"]: e for e in agent["env"]}
    for var, field in [("K8S_NODE_NAME", "spec.nodeName"), ("K8S_POD_NAME", "metadata.name"),
                       ("K8S_NAMESPACE_NAME", "metadata.namespace")]:
        assert env[var]["valueFrom"]["fieldRef"]["fieldPath"] == field


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scrapes_and_network_policy_reach_the_agent(overlay):
    docs = render(f"overlays/{overlay}")
    _, pod = [(d, p) for d, p in pod_templates(docs) if d["kind"] in ("Deployment", "DaemonSet")][0]
    agent = agent_container(pod)
    port_name = [p["name"] for p in agent["ports"] if p["containerPort"] == AGENT_PORT][0]
    pod_labels = [d for d in docs if d["kind"] in ("Deployment", "DaemonSet")][0]["spec"]["template"]["metadata"]["labels"]
    monitor = one(docs, "ServiceMonitor")
    selected = [s for s in docs if s["kind"] == "Service"
                and all(s["metadata"].get("labels", {}).get(k) == v
                        for k, v in monitor["spec"]["selector"]["matchLabels"].items())]
    assert len(selected) == 1, "the ServiceMonitor selects one Service"
    service = selected[0]
    assert all(pod_labels.get(k) == v for k, v in service["spec"]["selector"].items()), "the Service selects the pods"
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in [p["name"] for p in service["spec"]["ports"]]
    assert [p["targetPort"] for p in service["spec"]["ports"] if p["name"] == endpoint["port"]] in ([port_name], [AGENT_PORT])
    # The scrape carries the read token the agent's config names.
    assert endpoint["authorization"]["credentials"] == {"name": "slo-agent-tokens", "key": "read"}
    cfg = agent_yaml(docs, pod)
    read_tokens = [t for t in cfg["api"]["tokens"] if t.get("role") == "read" or "read" in t.get("roles", [])]
    assert any(t["token_file"] == "/etc/slo-agent/tokens/read" for t in read_tokens)
    assert cfg["api"]["read_requires_token"] is True
    if overlay == "daemonset":
        targets = {r["targetLabel"]: r["sourceLabels"] for r in endpoint["relabelings"]}
        assert targets["node"] == ["__meta_kubernetes_pod_node_name"]
        assert targets["zone"] == ["__meta_kubernetes_node_label_topology_kubernetes_io_zone"]
        assert monitor["spec"]["attachMetadata"]["node"] is True
    # The NetworkPolicy covers the agent's pods and lets Prometheus in on the agent's port.
    policy = [n for n in docs if n["kind"] == "NetworkPolicy"][0]
    assert all(pod_labels.get(k) == v for k, v in policy["spec"]["podSelector"]["matchLabels"].items())
    from_monitoring = [r for r in policy["spec"]["ingress"]
                       if any(f.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
                              == "monitoring" for f in r.get("from", []))]
    assert from_monitoring and {"port": port_name, "protocol": "TCP"} in from_monitoring[0]["ports"]
    # The agent listens where the probes and scrapes go.
    assert cfg["listen"] == f"0.0.0.0:{AGENT_PORT}"


def agent_yaml(docs, pod):
    yaml = need_module("yaml")
    agent = agent_container(pod)
    volumes = {v["name"]: v for v in pod["volumes"]}
    mount = [m for m in agent["volumeMounts"] if m["mountPath"] == "/etc/slo-agent/config"][0]
    return yaml.safe_load(one(docs, "ConfigMap", volumes[mount["name"]]["configMap"]["name"])["data"]["agent.yaml"])


def unpack_pod_files(docs, pod, root):
    """Lay out under `root` what the agent container sees under /etc/slo-agent and
    /var/lib/slo-agent: the ConfigMaps' files, a random token for every key of the tokens
    Secret it mounts (the Secret itself is made at install, docs/deploy.md), an empty state
    directory. Returns the agent.yaml text with those paths moved under `root`."""
    agent = agent_container(pod)
    volumes = {v["name"]: v for v in pod["volumes"]}
    text = None
    for m in agent["volumeMounts"]:
        if not m["mountPath"].startswith(("/etc/slo-agent", "/var/lib/slo-agent")):
            continue
        target = root / m["mountPath"].lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        v = volumes[m["name"]]
        if "configMap" in v:
            for key, value in one(docs, "ConfigMap", v["configMap"]["name"])["data"].items():
                (target / key).write_text(value)
                if key == "agent.yaml":
                    text = value
        elif "secret" in v:
            items = v["secret"].get("items") or [{"key": k, "path": k}
                                                 for k in ["read", "deploy", "approve", "backup", "firehose"]]
            for item in items:
                (target / item["path"]).write_text(secrets.token_hex(32) + "\n")
    assert text is not None, "no agent.yaml mounted"
    # Every absolute path in the config (comments aside) must be one of the pod's mounts.
    values = "\n".join(re.sub(r"(^|\s)#.*$", "", line) for line in text.splitlines())
    for path in re.findall(r"(?<![\w.])/(?:etc|var)/[\w./*-]+", values):
        assert any(path.startswith(m["mountPath"] + "/") or path == m["mountPath"] for m in agent["volumeMounts"]), \
            f"agent.yaml names {path}, which the pod does not mount"
    moved = text.replace("/etc/slo-agent/", f"{root}/etc/slo-agent/").replace("/var/lib/slo-agent/",
                                                                              f"{root}/var/lib/slo-agent/")
    (root / "agent.yaml").write_text(moved)
    return root / "agent.yaml"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_configmaps_pass_the_agents_own_checks(overlay, tmp_path):
    """The agent.yaml and the specs in the rendered ConfigMaps, as the pod mounts them, pass
    `slo-agent validate` and the config reader (`slo-agent iam-policy --config` reads the whole
    config as `run` does, token files included, and prints the IAM policy the pod's role needs)."""
    docs = render(f"overlays/{overlay}")
    _, pod = [(d, p) for d, p in pod_templates(docs) if d["kind"] in ("Deployment", "DaemonSet")][0]
    config = unpack_pod_files(docs, pod, tmp_path)
    specs = tmp_path / "etc" / "slo-agent" / "slo-specs"
    r = run_bin("validate", specs)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^\d+ SLOs valid", r.stdout, re.M), r.stdout
    r = run_bin("iam-policy", "--config", config)
    assert r.returncode == 0, r.stdout + r.stderr
    policy = json.loads(r.stdout)
    cfg = agent_yaml(docs, pod)
    assert cfg["state"].startswith("/var/lib/slo-agent/")
    assert cfg["specs"] == ["/etc/slo-agent/slo-specs"]
    if overlay == "central":
        # The role the ServiceAccount's annotation names needs exactly these.
        actions = sorted(a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))
        assert actions == ["s3:GetObject", "s3:ListBucket"], policy
        sa = one(docs, "ServiceAccount", pod["serviceAccountName"])
        assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    else:
        assert policy["Statement"] == [], policy
    # A broken config is refused by the same check (so the check is not vacuous).
    config.write_text(config.read_text().replace("listen: 0.0.0.0:9464", "listen: 0.0.0.0:http"))
    r = run_bin("iam-policy", "--config", config)
    assert r.returncode == 2 and "listen" in r.stderr, r.stderr


def test_backup_cronjob_and_restore_job_fit_the_central_agent():
    docs = render("overlays/central")
    cron = one(docs, "CronJob", "slo-agent-backup")
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    args = c["args"]
    assert args[0] == "backup"
    opts = dict(zip(args[1::2], args[2::2]))
    assert set(opts) == {"--url", "--token-file", "--out"}
    # --url is the central Service.
    service = one(docs, "Service", "slo-agent")
    assert opts["--url"] == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
    # --token-file is mounted from the Secret's `backup` key only, and is an admin token of the agent.
    volumes = {v["name"]: v for v in pod["volumes"]}
    mount = [m for m in c["volumeMounts"] if opts["--token-file"].startswith(m["mountPath"] + "/")][0]
    secret = volumes[mount["name"]]["secret"]
    assert secret["secretName"] == "slo-agent-tokens" and secret["items"] == [{"key": "backup", "path": "backup"}]
    _, agent_pod = [(d, p) for d, p in pod_templates(docs) if d["kind"] == "Deployment"][0]
    cfg = agent_yaml(docs, agent_pod)
    admins = [t for t in cfg["api"]["tokens"] if t.get("role") == "admin" or "admin" in t.get("roles", [])]
    assert [t["token_file"] for t in admins] == [opts["--token-file"]]
    # --out is an S3 prefix (ending in /); the job's identity is its own, annotated with a role.
    assert re.fullmatch(r"s3://[a-z0-9.-]{3,63}/([^/]+/)*", opts["--out"]), opts["--out"]
    assert pod["serviceAccountName"] == "slo-agent-backup"
    assert "eks.amazonaws.com/role-arn" in one(docs, "ServiceAccount", "slo-agent-backup")["metadata"]["annotations"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    # The central NetworkPolicy lets the backup pods in.
    policy = one(docs, "NetworkPolicy")
    labels = cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert any(all(labels.get(k) == v for k, v in f.get("podSelector", {}).get("matchLabels", {"-": "-"}).items())
               for r in policy["spec"]["ingress"] for f in r.get("from", []))

    restore = one(render("overlays/central/restore"), "Job")
    rpod = restore["spec"]["template"]["spec"]
    main = rpod["containers"][0]
    rargs = main["args"]
    assert rargs[0] == "restore" and "--force" in rargs
    ropts = dict(zip(rargs[1:-1:2], rargs[2:-1:2]))
    assert ropts["--state"] == cfg["state"], "the restore writes the file the agent reads"
    claim = {v["name"]: v for v in rpod["volumes"]}[[m for m in main["volumeMounts"]
                                                     if ropts["--state"].startswith(m["mountPath"] + "/")][0]["name"]]
    assert claim["persistentVolumeClaim"]["claimName"] == one(docs, "PersistentVolumeClaim")["metadata"]["name"]
    assert restore["metadata"]["namespace"] == cron["metadata"]["namespace"]

    # Where the binary already has the backup and restore commands, they take these flags.
    for command, flags in [("backup", set(opts)), ("restore", set(ropts) | {"--force"})]:
        r = run_bin(command, "--help")
        if r.returncode != 0:
            msg = f"`slo-agent {command}` is not in this binary yet: its flags are not checked against the manifests"
            print(f"\nNOTE: {msg}")
            continue
        for flag in flags:
            assert flag in r.stdout, f"`slo-agent {command} --help` has no {flag}"


def cargo_version():
    text = (ROOT / "agent" / "Cargo.toml").read_text()
    return re.search(r'^version = "([^"]+)"', text, re.M).group(1)


@pytest.mark.parametrize("path", [f"overlays/{o}" for o in OVERLAYS] + ["overlays/central/restore"])
def test_every_agent_image_is_the_crate_version(path):
    images = [c["image"] for _, pod in pod_templates(render(path))
              for c in pod.get("containers", []) + pod.get("initContainers", []) if "slo-agent" in c["image"]]
    assert images and all(i.endswith(f"/slo-agent:{cargo_version()}") for i in images), images


def test_generated_specs_and_rules_are_up_to_date(tmp_path):
    """base/slo-specs/ is slo-specs/ flattened, and rules/prometheusrule.yaml is what the
    current binary generates from it: regenerate with deploy/kubernetes/generate-rules.sh."""
    r = subprocess.run([str(K8S / "generate-rules.sh"), "--bin", BIN, "--out-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    hint = "regenerate with deploy/kubernetes/generate-rules.sh"
    fresh = sorted(p.name for p in (tmp_path / "base" / "slo-specs").iterdir())
    committed = sorted(p.name for p in (K8S / "base" / "slo-specs").iterdir())
    assert fresh == committed, hint
    for name in fresh:
        assert (tmp_path / "base" / "slo-specs" / name).read_text() == (K8S / "base" / "slo-specs" / name).read_text(), \
            f"base/slo-specs/{name}: {hint}"
    assert (tmp_path / "rules" / "prometheusrule.yaml").read_text() == (K8S / "rules" / "prometheusrule.yaml").read_text(), \
        f"rules/prometheusrule.yaml: {hint}"
    # The ConfigMap holds every spec file (its file list is in base/kustomization.yaml).
    cm = one(render("overlays/central"), "ConfigMap", "slo-agent-specs")
    assert sorted(cm["data"]) == committed


def test_the_prometheusrule_passes_promtool_and_covers_every_slo(tmp_path):
    promtool = need("promtool")
    yaml = need_module("yaml")
    rule = one(render("rules"), "PrometheusRule")
    path = tmp_path / "slo-agent.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    r = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    # One group per SLO of the specs that has rules: the same groups as alerts/ (same specs).
    groups = {g["name"] for g in rule["spec"]["groups"]}
    alerts = set()
    for f in (ROOT / "alerts").glob("*.rules.yaml"):
        alerts |= {g["name"] for g in yaml.safe_load(f.read_text())["groups"]}
    assert groups == alerts


def test_an_in_place_configmap_update_of_the_specs_is_reloaded(tmp_path, agent_factory):
    """The specs ConfigMap has no name hash: Kubernetes updates its files in place, the way
    the kubelet's atomic writer does (a new `..<timestamp>` directory, the `..data` symlink
    swapped to it, one symlink per key into `..data`), and the agent reloads them without a
    restart; specs that do not validate are refused and the old ones stay."""
    specs = tmp_path / "slo-specs"
    specs.mkdir()
    base = K8S / "base" / "slo-specs"
    files = {p.name: p.read_text() for p in base.iterdir()}

    def publish(contents, n):
        stamp = f"..2026_01_01_00_00_0{n}.{n:09d}"
        (specs / stamp).mkdir()
        for name, text in contents.items():
            (specs / stamp / name).write_text(text)
        tmp_link = specs / "..data_tmp"
        tmp_link.symlink_to(stamp)
        os.replace(tmp_link, specs / "..data")
        for name in contents:
            if not (specs / name).is_symlink():
                (specs / name).symlink_to(Path("..data") / name)
        for old in specs.iterdir():
            if old.name.startswith("..2") and old.name != stamp:
                shutil.rmtree(old)
            elif old.is_symlink() and old.name not in contents and not old.name.startswith(".."):
                old.unlink()

    publish(files, 1)
    logs = tmp_path / "logs"
    logs.mkdir()
    port = free_port()
    agent = agent_factory(
        f"specs: [{specs}]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 200ms\n"
        f"sources:\n  - {{name: node, type: file, paths: [\"{logs}/*.log\"], format: ndjson}}\n", port)

    def slo_names():
        return sorted(s["name"] for s in agent.get("/api/v1/slos")["slos"])

    before = slo_names()
    assert before and "kubernetes-reload-test" not in before
    extra = (ROOT / "deploy" / "kubernetes" / "overlays" / "sidecar" / "shop-api.yaml").read_text() \
        .replace("shop-api-availability", "kubernetes-reload-test")
    publish({**files, "extra.yaml": extra}, 2)
    wait_until(lambda: "kubernetes-reload-test" in slo_names(), timeout=30, what="the in-place update reloaded")
    assert len(slo_names()) == len(before) + 1

    publish({**files, "extra.yaml": extra.replace("objective: 99.9", "objective: 250")}, 3)
    wait_until(lambda: (metric_value(agent.metrics(), "slo_agent_spec_reload_failures_total") or 0) >= 1,
               timeout=30, what="the broken update refused")
    assert "kubernetes-reload-test" in slo_names()
    assert agent.proc.poll() is None, "the agent kept running"


def test_the_overlay_of_docs_deploy_md_renders_and_takes_effect(tmp_path):
    """docs/deploy.md, step 3: an overlay of one's own beside ours, replacing agent.yaml, the
    image, the backup bucket and adding the Prometheus selection label."""
    kubectl = need("kubectl")
    yaml = need_module("yaml")
    text = (ROOT / "docs" / "deploy.md").read_text()
    block = re.search(r"```yaml\n# deploy/my-shop/kustomization.yaml\n(.*?)```", text, re.S)
    assert block, "docs/deploy.md lost its example overlay"
    shutil.copytree(K8S, tmp_path / "deploy" / "kubernetes")
    mine = tmp_path / "deploy" / "my-shop"
    mine.mkdir()
    (mine / "kustomization.yaml").write_text(block.group(1))
    agent = (K8S / "overlays" / "central" / "agent.yaml").read_text().replace("region: eu-west-1", "region: eu-central-1")
    (mine / "agent.yaml").write_text(agent)
    r = subprocess.run([kubectl, "kustomize", str(mine)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    for d in docs:
        validate(d)
    _, pod = [(d, p) for d, p in pod_templates(docs) if d["kind"] == "Deployment"][0]
    assert agent_yaml(docs, pod)["region"] == "eu-central-1"
    images = {c["image"] for _, p in pod_templates(docs) for c in p["containers"]}
    assert images == {"444455556666.dkr.ecr.eu-west-1.amazonaws.com/slo-agent:0.1.0"}
    cron = one(docs, "CronJob")
    assert cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"][-1] == \
        "s3://my-backup-bucket/slo-agent/backups/"
    for kind in ("ServiceMonitor", "PrometheusRule"):
        assert one(docs, kind)["metadata"]["labels"]["release"] == "kube-prometheus-stack"
