"""`slo-agent probe` side by side with the real blackbox_exporter (Debian
`prometheus-blackbox-exporter`) against the same local targets: an HTTP
server that answers its first byte late, and an HTTPS one whose TLS
handshake is slow (certificates made here with openssl, never kept). Both
must give the same metric names and label sets (ignoring our `probe`, `hop`,
`region` labels and our two extra series), phase timings that agree within
2 ms or 10 %, the same certificate expiry, and our output passes
`promtool check metrics`."""

import http.server
import json
import re
import ssl
import statistics
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from conftest import free_port, http_get, need, run_bin, wait_until

FIRST_BYTE = 0.150  # seconds the server waits before its response head
TLS_DELAY = 0.100  # seconds the HTTPS server waits before its TLS handshake
RUNS = 3  # probes per tool; timings are compared by their medians

# Series only slo-agent writes (named apart from blackbox's; see docs/probes.md).
OURS_ONLY = {"probe_tls_cipher_info", "slo_agent_probe_attempts", "slo_agent_cert_problem",
             "slo_agent_cert_expiry_remaining_seconds"}
OUR_LABELS = {"probe", "hop", "region"}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server's name
        time.sleep(FIRST_BYTE)
        body = b"hello from the shop\n" * 20
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class SlowTlsServer(http.server.ThreadingHTTPServer):
    """HTTPS whose handshake starts TLS_DELAY after the connection is accepted."""

    context = None

    def finish_request(self, request, client_address):
        time.sleep(TLS_DELAY)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        self.RequestHandlerClass(tls, client_address, self)


def serve(server):
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def make_certificates(d: Path):
    openssl = need("openssl")

    def run(*args):
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=d)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "30", "-subj", "/CN=e2e probe CA")
    run("req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
    )
    run("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "leaf.pem", "-days", "20", "-extfile", "ext.cnf")
    return d / "ca.pem", d / "leaf.pem", d / "leaf.key"


def parse(text):
    """{name: [(labels without ours, value)]} of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        assert m, f"unparsable line: {line!r}"
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        labels = {k: v for k, v in labels.items() if k not in OUR_LABELS}
        out.setdefault(m.group(1), []).append((labels, float(m.group(4))))
    return out


def label_sets(parsed):
    return {name: sorted(tuple(sorted(labels)) for labels, _ in series) for name, series in parsed.items()}


def phases(parsed):
    return {labels["phase"]: v for labels, v in parsed["probe_http_duration_seconds"]}


def value(parsed, name):
    return parsed[name][0][1]


def agree(what, ours, theirs):
    tolerance = max(0.002, 0.10 * max(ours, theirs))
    assert abs(ours - theirs) <= tolerance, f"{what}: slo-agent {ours:.4f}s, blackbox {theirs:.4f}s (±{tolerance:.4f}s)"


@pytest.fixture
def blackbox(tmp_path):
    exe = need("prometheus-blackbox-exporter")
    ca, leaf, key = make_certificates(tmp_path)
    port = free_port()
    (tmp_path / "blackbox.yml").write_text(
        "modules:\n"
        "  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n"
        "  https_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n"
        f"      tls_config: {{ca_file: '{ca}'}}\n"
    )
    log = open(tmp_path / "blackbox.log", "w")
    proc = subprocess.Popen(
        [exe, f"--config.file={tmp_path / 'blackbox.yml'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_get(base + "/-/healthy")[0] == 200, timeout=30, what="blackbox_exporter up")
    try:
        yield base, ca, leaf, key
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def side_by_side(base, module, target, *our_args):
    ours, theirs = [], []
    for _ in range(RUNS):
        query = urllib.parse.urlencode({"target": target, "module": module})
        status, text = http_get(f"{base}/probe?{query}", timeout=10)
        assert status == 200
        theirs.append(text)
        r = run_bin("probe", target, "--metrics", "--retries", "0", "--name", "shop", "--hop", "origin",
                    "--region", "e2e", *our_args)
        assert r.returncode == 0, r.stdout + r.stderr
        ours.append(r.stdout)
    return ours, theirs


def compare(ours_texts, theirs_texts, tmp_path):
    ours = [parse(t) for t in ours_texts]
    theirs = [parse(t) for t in theirs_texts]
    for o, t in zip(ours, theirs):
        assert value(t, "probe_success") == 1 and value(o, "probe_success") == 1
        ours_sets = {k: v for k, v in label_sets(o).items() if k not in OURS_ONLY}
        assert ours_sets == label_sets(t), "metric names and label sets differ"
        for name in ("probe_http_status_code", "probe_http_version", "probe_http_content_length",
                     "probe_http_uncompressed_body_length", "probe_http_redirects", "probe_http_ssl",
                     "probe_ip_protocol", "probe_ip_addr_hash", "probe_failed_due_to_regex"):
            assert value(o, name) == value(t, name), name
    for phase in ("resolve", "connect", "tls", "processing", "transfer"):
        agree(phase, statistics.median(phases(o)[phase] for o in ours),
              statistics.median(phases(t)[phase] for t in theirs))
    agree("probe_duration_seconds", statistics.median(value(o, "probe_duration_seconds") for o in ours),
          statistics.median(value(t, "probe_duration_seconds") for t in theirs))
    # Our exposition is valid for Prometheus.
    promtool = need("promtool")
    (tmp_path / "ours.prom").write_text(ours_texts[-1])
    r = subprocess.run([promtool, "check", "metrics"], input=ours_texts[-1], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return ours[-1], theirs[-1]


def test_http_probe_matches_blackbox_exporter(tmp_path, blackbox):
    base, *_ = blackbox
    server = serve(http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler))
    try:
        target = f"http://127.0.0.1:{server.server_address[1]}/"
        ours, theirs = compare(*side_by_side(base, "http_2xx", target), tmp_path)
        assert abs(phases(ours)["processing"] - FIRST_BYTE) < 0.03
    finally:
        server.shutdown()


def test_https_probe_matches_blackbox_exporter(tmp_path, blackbox):
    base, ca, leaf, key = blackbox
    server = SlowTlsServer(("127.0.0.1", 0), Handler)
    server.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.context.load_cert_chain(leaf, key)
    serve(server)
    try:
        target = f"https://localhost:{server.server_address[1]}/"
        ours, theirs = compare(*side_by_side(base, "https_2xx", target, "--ca-file", ca), tmp_path)
        assert value(ours, "probe_ssl_earliest_cert_expiry") == value(theirs, "probe_ssl_earliest_cert_expiry")
        assert abs(phases(ours)["tls"] - TLS_DELAY) < 0.03
    finally:
        server.shutdown()


def test_probe_command_exit_codes_and_reasons():
    """`slo-agent probe`: exit 0 on success, 1 with the failed assertion named
    (after its retry), 2 for a usage error; `--json` holds every attempt."""
    server = serve(http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler))
    try:
        url = f"http://localhost:{server.server_address[1]}/"
        r = run_bin("probe", url)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "processing" in r.stdout and "result: success after 1 attempt(s)" in r.stdout, r.stdout

        r = run_bin("probe", url, "--expect-status", "201", "--body-not-matches", "shop")
        assert r.returncode == 1, r.stdout + r.stderr
        assert r.stdout.count("failed:      status 200 not in [201]") == 2, r.stdout
        assert "failed:      body matches /shop/" in r.stdout, r.stdout
        assert "attempt 2 (retry 1): FAILED" in r.stdout, r.stdout

        r = run_bin("probe", url, "--json", "--latency-budget", "1ms", "--retries", "0")
        assert r.returncode == 1
        outcome = json.loads(r.stdout)
        assert outcome["success"] is False and len(outcome["attempts"]) == 1
        failed = outcome["attempts"][0]["failed_assertions"]
        assert failed[0]["assertion"] == "latency" and failed[0]["budget_ms"] == 1, failed

        for bad in (["ftp://example.com/"], [url, "--body-matches", "("], [url, "--timeout", "soon"]):
            r = run_bin("probe", *bad)
            assert r.returncode == 2, (bad, r.stdout, r.stderr)
    finally:
        server.shutdown()
