"""Push sources through the built binary: a Firehose delivery acknowledged
with 200 survives a SIGKILL right after the answer, and its redelivery after
the restart is recognised and not counted again."""

import base64
import gzip
import json
import signal
import time
import urllib.error
import urllib.request

from conftest import Agent, free_port, wait_until

SPEC = """apiVersion: slo-agent/v1
kind: SLO
metadata: {name: fn-errors}
spec:
  service: pay
  objective: 99
  window: 7d
  indicator:
    source: lambda
    good: {status: "< 500"}
"""

KEY = "e2e-firehose-key"


def post(url, body, headers):
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def subscription_record(n_ok, n_err):
    now = int(time.time() * 1000) - 60_000
    events = []
    for i in range(n_ok + n_err):
        status = "\tStatus: error" if i >= n_ok else ""
        msg = (f"REPORT RequestId: 00000000-0000-0000-0000-{i:012d}\tDuration: 10.00 ms\tBilled Duration: 10 ms\t"
               f"Memory Size: 128 MB\tMax Memory Used: 64 MB{status}")
        events.append({"id": str(i), "timestamp": now + i, "message": msg})
    msg = {"messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "/aws/lambda/pay",
           "logStream": "s", "subscriptionFilters": ["slo"], "logEvents": events}
    return gzip.compress(json.dumps(msg).encode())


def test_an_acknowledged_firehose_delivery_survives_sigkill_and_counts_once(tmp_path):
    (tmp_path / "specs.yaml").write_text(SPEC)
    (tmp_path / "fh.key").write_text(KEY + "\n")
    port = free_port()
    config = (
        f"specs: [specs.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 200ms\n"
        "sources:\n  - name: logs\n    type: firehose\n    token_file: fh.key\n"
        "    log_groups: [{log_group: \"/aws/lambda/*\", format: lambda, service: pay}]\n"
    )
    record = subscription_record(95, 5)
    body = json.dumps({"requestId": "e2e-1", "timestamp": int(time.time() * 1000),
                       "records": [{"data": base64.b64encode(record).decode()}]}).encode()
    headers = {"X-Amz-Firehose-Request-Id": "e2e-1", "X-Amz-Firehose-Access-Key": KEY,
               "Content-Type": "application/json", "Content-Encoding": "gzip"}
    url = f"http://127.0.0.1:{port}/ingest/firehose/logs"

    agent = Agent(tmp_path, config, port)
    status, answer = post(url, gzip.compress(body), headers)
    assert status == 200, answer
    assert answer["requestId"] == "e2e-1"
    # Killed the moment the answer arrived: no graceful shutdown, no final commit.
    agent.proc.send_signal(signal.SIGKILL)
    agent.proc.wait(timeout=30)
    agent.log.close()

    agent = Agent(tmp_path, config, port)
    try:
        def totals():
            s = agent.get("/api/v1/slos/fn-errors")["events"]
            return (s["total"], s["good"]) if s["total"] else None

        assert wait_until(totals, timeout=20, what="restored counts") == (100, 95)
        # Firehose retries the same request id: acknowledged, not counted again.
        status, answer = post(url, gzip.compress(body), headers)
        assert status == 200, answer
        time.sleep(0.6)
        assert totals() == (100, 95)
        wrong = dict(headers, **{"X-Amz-Firehose-Access-Key": "nope"})
        status, answer = post(url, gzip.compress(body), wrong)
        assert status == 401 and answer["errorMessage"] == "wrong X-Amz-Firehose-Access-Key"
        assert KEY not in agent.logs()
    finally:
        assert agent.stop() == 0
