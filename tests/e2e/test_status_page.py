"""The public status page in a real headless browser (Debian `chromium`): one
agent with 50 components, six of them in every state there is — major outage
(a log that pages), partial outage (one of two SLOs pages, budget left),
degraded performance (a ticket alert; and a journey slower than its step's
latency budget), under maintenance (an exclusion window covering now),
operational — and 44 more operational ones, with weekly and one-off
maintenance ahead. Chromium loads /status over the DevTools protocol; the
test reads the DOM and the computed colours, checks that every state is in
words, the headings' structure and the badges' contrast, that nothing
internal is shown, and measures (never asserts) the load time."""

import base64
import http.server
import json
import os
import socket
import statistics
import struct
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

from conftest import free_port, need, wait_until

SPEC = """apiVersion: slo-agent/v1
kind: SLO
metadata: {{name: {name}}}
spec:
  service: {service}
  objective: 99.9
  window: 30d
  indicator:
    source: ndjson
    filter: {{service: {service}}}
    good: {{status: "< 500"}}
{extra}---
"""


class DevTools:
    """The smallest DevTools-protocol client: one websocket, text frames."""

    def __init__(self, ws_url):
        host, rest = ws_url[len("ws://"):].split("/", 1)
        h, p = host.split(":")
        self.sock = socket.create_connection((h, int(p)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (f"GET /{rest} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert b" 101 " in head.split(b"\r\n")[0], head
        self.next_id = 0

    def _send(self, text):
        data = text.encode()
        mask = os.urandom(4)
        n = len(data)
        if n < 126:
            header = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 65536:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            assert chunk, "devtools closed the connection"
            buf += chunk
        return buf

    def _recv(self):
        message = b""
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._exact(8))[0]
            message += self._exact(n)
            if b0 & 0x80:
                return message.decode()

    def call(self, method, **params):
        self.next_id += 1
        self._send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            m = json.loads(self._recv())
            if m.get("id") == self.next_id:
                assert "error" not in m, m
                return m["result"]

    def evaluate(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in r, r
        return r["result"].get("value")


def write_log(path, now_ms):
    """An hour of 20 requests a minute per service; the last 3 minutes 503
    for `shop`, `slow` and `part`."""
    with open(path, "w") as f:
        for m in range(59, -1, -1):
            for service in ("shop", "slow", "part", "calm", "maint"):
                status = 503 if m < 3 and service in ("shop", "slow", "part") else 200
                for i in range(20):
                    ts = now_ms - m * 60_000 - 1_000 - i
                    f.write(json.dumps({"ts": ts, "service": service, "path": "/", "status": status}) + "\n")


class SlowSite(http.server.BaseHTTPRequestHandler):
    """What the journey walks: 200 after 300 ms."""

    def do_GET(self):  # noqa: N802 - the standard library's name
        time.sleep(0.3)
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


# State → (badge background, badge text), as the browser computes them.
COLOURS = {
    "Operational": ("rgb(26, 127, 55)", "rgb(255, 255, 255)"),
    "Under maintenance": ("rgb(5, 80, 174)", "rgb(255, 255, 255)"),
    "Degraded performance": ("rgb(245, 197, 24)", "rgb(17, 17, 17)"),
    "Partial outage": ("rgb(188, 76, 0)", "rgb(255, 255, 255)"),
    "Major outage": ("rgb(179, 38, 30)", "rgb(255, 255, 255)"),
}


def contrast(a, b):
    """WCAG 2 contrast ratio of two `rgb(r, g, b)` colours."""
    def luminance(c):
        channels = [int(x) / 255 for x in c[c.index("(") + 1:c.index(")")].split(",")[:3]]
        lin = [x / 12.92 if x <= 0.04045 else ((x + 0.055) / 1.055) ** 2.4 for x in channels]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    hi, lo = sorted([luminance(a), luminance(b)], reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def specs(now_ms):
    iso = lambda ms: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))  # noqa: E731
    now_maint = f'  exclusions:\n    - {{start: "{iso(now_ms - 3_600_000)}", end: "{iso(now_ms + 3_600_000)}", reason: internal-reason-x}}\n'
    # Calm has maintenance ahead: every week tomorrow (UTC) at 03:00 for 90 minutes, and once in 3 days.
    tomorrow = time.gmtime(now_ms / 1000 + 86_400)
    day = time.strftime("%A", tomorrow).lower()
    once_start = now_ms + 3 * 86_400_000 - now_ms % 60_000
    ahead = (f'  exclusions:\n    - {{weekly: {{day: {day}, start: "03:00", duration: 90m}}, reason: internal-weekly-y}}\n'
             f'    - {{start: "{iso(once_start)}", end: "{iso(once_start + 1_800_000)}", reason: internal-once-z}}\n')
    ticket = "  alerting:\n    rules: [{severity: ticket, long_window: 1h, short_window: 5m, burn_rate: 2}]\n"
    page = "  alerting:\n    rules: [{severity: page, long_window: 1h, short_window: 5m, burn_rate: 0.3}]\n"
    text = (SPEC.format(name="shop-avail", service="shop", extra="")
            + SPEC.format(name="maint-avail", service="maint", extra=now_maint)
            + SPEC.format(name="calm-avail", service="calm", extra=ahead)
            + SPEC.format(name="slow-avail", service="slow", extra=ticket).replace("objective: 99.9", "objective: 99")
            + SPEC.format(name="part-avail", service="part", extra=page).replace("objective: 99.9", "objective: 90")
            # Part's second SLO counts other requests (none), and never pages.
            + SPEC.format(name="part-other", service="part", extra="").replace("{service: part}", "{service: part-other}"))
    want_maintenance = {
        "weekly": (time.strftime("%Y-%m-%dT03:00:00Z", tomorrow), time.strftime("%Y-%m-%dT04:30:00Z", tomorrow)),
        "once": (iso(once_start), iso(once_start + 1_800_000)),
    }
    return text, want_maintenance


class Browser:
    """Headless chromium with one page driven over the DevTools protocol,
    scripts off on the page."""

    def __init__(self, chromium):
        port = free_port()
        self.profile = tempfile.mkdtemp()
        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--remote-debugging-port={port}",
             f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

        def target():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=2) as r:
                pages = [t for t in json.loads(r.read()) if t.get("type") == "page"]
            return pages and pages[0]["webSocketDebuggerUrl"]

        self.cdp = DevTools(wait_until(target, timeout=30, what="chromium's DevTools"))
        self.cdp.call("Page.enable")
        self.cdp.call("Emulation.setScriptExecutionDisabled", value=True)

    def load(self, url):
        """Navigate to `url` (from about:blank) and wait for its load event to
        end: (wall ms, navigation timing's responseEnd - requestStart ms,
        loadEventEnd ms)."""
        self.cdp.call("Page.navigate", url="about:blank")
        wait_until(lambda: self.cdp.evaluate("location.href") == "about:blank", timeout=10, step=0.01, what="blank")
        began = time.monotonic()
        self.cdp.call("Page.navigate", url=url)
        done = ("location.href === %s && document.readyState === 'complete' && "
                "performance.getEntriesByType('navigation')[0].loadEventEnd > 0") % json.dumps(url)
        wait_until(lambda: self.cdp.evaluate(done), timeout=10, step=0.005, what="load")
        wall = (time.monotonic() - began) * 1000
        response, load = json.loads(self.cdp.evaluate(
            "JSON.stringify((e => [e.responseEnd - e.requestStart, e.loadEventEnd - e.startTime])"
            "(performance.getEntriesByType('navigation')[0]))"))
        return wall, response, load

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def test_status_page_in_chromium(agent_factory, tmp_path):
    chromium = need("chromium")
    now_ms = int(time.time() * 1000)
    (tmp_path / "logs").mkdir()
    text, want_maintenance = specs(now_ms)
    (tmp_path / "specs.yaml").write_text(text)
    write_log(tmp_path / "logs" / "app.ndjson", now_ms)
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowSite)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    site_url = f"http://127.0.0.1:{site.server_address[1]}/internal-step-path"
    components = ("    - {name: Shop, service: shop}\n    - {name: Maintained, service: maint}\n"
                  "    - {name: Calm, service: calm}\n    - {name: Slow, service: slow}\n"
                  "    - {name: Partial, service: part}\n    - {name: Buying, journey: buy-flow-internal}\n")
    components += "".join(f"    - {{name: Extra {i}, service: extra-{i}}}\n" for i in range(44))
    port = free_port()
    (tmp_path / "t").write_text("admin-token-0123456789abcdef")
    agent_factory(
        f"specs: [specs.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 100ms\npoll_interval: 50ms\n"
        f"alerts: {{min_events: 200, resolve_after: 5m}}\n"
        f"api:\n  read_requires_token: true\n  tokens:\n    - {{name: ops, role: admin, token_file: t}}\n"
        f"journeys:\n  - name: buy-flow-internal\n    service: buyflow\n    interval: 10s\n    steps:\n"
        f"      - {{name: cart-step-internal, request: {{method: GET, url: \"{site_url}\"}}, expect: {{latency: 100ms}}}}\n"
        f"status:\n  title: Acme status\n  components:\n{components}"
        f"sources:\n  - name: logs\n    type: file\n    paths: [\"logs/*.ndjson\"]\n    format: ndjson\n",
        port,
    )
    url = f"http://127.0.0.1:{port}"
    want = ["major_outage", "under_maintenance", "operational", "degraded_performance", "partial_outage",
            "degraded_performance"]

    def settled():
        with urllib.request.urlopen(url + "/status.json", timeout=5) as r:
            page = json.loads(r.read())
        return [c["status"] for c in page["components"][:6]] == want and page

    try:
        page = wait_until(settled, timeout=90, what="the six components in their states")
    except AssertionError:
        with urllib.request.urlopen(url + "/status.json", timeout=5) as r:
            raise AssertionError([c["status"] for c in json.loads(r.read())["components"][:6]])
    # Maintenance: the window in progress (Maintained), the weekly one and the one-off ahead (Calm), in UTC.
    got = {(m["recurrence"], m["in_progress"], tuple(m["components"])): (m["starts_at"], m["ends_at"])
           for m in page["scheduled_maintenance"]}
    assert got[("weekly", False, ("Calm",))] == want_maintenance["weekly"], got
    assert got[("once", False, ("Calm",))] == want_maintenance["once"], got
    assert ("once", True, ("Maintained",)) in got, got
    assert "crawler" not in json.dumps(page).lower()
    # Operators see the internals, with a token (reads need one here).
    try:
        urllib.request.urlopen(url + "/api/v1/status", timeout=5)
        raise AssertionError("/api/v1/status answered without a token")
    except urllib.error.HTTPError as e:
        assert e.code == 401, e.code
    req = urllib.request.Request(url + "/api/v1/status", headers={"Authorization": "Bearer admin-token-0123456789abcdef"})
    with urllib.request.urlopen(req, timeout=5) as r:
        ops = json.loads(r.read())
    buying = ops["components"][5]["internal"]
    assert buying["kind"] == "journey" and buying["journey"] == "buy-flow-internal", buying
    assert buying["journey_runs"][0]["status"] == "degraded", buying
    partial = ops["components"][4]["internal"]
    assert sorted(partial["slos"]) == ["part-avail", "part-other"], partial
    assert partial["firing_alerts"] == [{"slo": "part-avail", "severity": "page"}], partial

    browser = Browser(chromium)
    try:
        cdp = browser.cdp
        # Load /status without a token (reads need one; the page does not), several times.
        timings = [browser.load(url + "/status") for _ in range(7)]
        html_bytes = len(urllib.request.urlopen(url + "/status", timeout=5).read())
        for name, i in (("wall", 0), ("response (responseEnd - requestStart)", 1), ("loadEventEnd", 2)):
            values = sorted(t[i] for t in timings)
            print(f"/status, 50 components, {html_bytes} bytes, {name}: min {values[0]:.1f} ms, "
                  f"median {statistics.median(values):.1f} ms, max {values[-1]:.1f} ms over {len(values)} loads")

        assert cdp.evaluate("document.querySelector('h1').textContent") == "Acme status"
        # Headings: one h1, then h2 sections, h3 inside them; no level skipped.
        levels = json.loads(cdp.evaluate(
            "JSON.stringify([...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].map(h => +h.tagName[1]))"))
        assert levels[0] == 1 and levels.count(1) == 1, levels
        assert all(b - a <= 1 for a, b in zip(levels, levels[1:])), levels
        h2 = json.loads(cdp.evaluate("JSON.stringify([...document.querySelectorAll('h2')].map(h => h.textContent))"))
        # Shop's and Partial's page alerts opened incidents.
        assert h2 == ["Active incidents", "Components", "Scheduled maintenance", "Recent incidents"], h2
        banner = json.loads(cdp.evaluate(
            "(b => JSON.stringify([b.textContent, getComputedStyle(b).backgroundColor, getComputedStyle(b).color]))"
            "(document.getElementById('overall'))"))
        assert "major outage" in banner[0] and contrast(banner[1], banner[2]) >= 4.5, banner
        rows = json.loads(cdp.evaluate(
            "JSON.stringify([...document.querySelectorAll('article.component')].map(a => "
            "[a.querySelector('h3').textContent, a.querySelector('.state').textContent, "
            "getComputedStyle(a.querySelector('.state')).backgroundColor, getComputedStyle(a.querySelector('.state')).color, "
            "a.querySelectorAll('.bars li').length, a.dataset.state]))"
        ))
        assert len(rows) == 50
        by_name = {r[0]: r for r in rows}
        words = {"Shop": "Major outage", "Maintained": "Under maintenance", "Calm": "Operational",
                 "Slow": "Degraded performance", "Partial": "Partial outage", "Buying": "Degraded performance"}
        for name, word in words.items():
            assert by_name[name][1:4] == [word, *COLOURS[word]], by_name[name]
        assert {r[1] for r in rows} == set(COLOURS), "all five states, in words"
        for r in rows:
            # Text for colour: the badge says the state its data-state and colour stand for.
            assert r[1] == r[5].replace("_", " ").capitalize(), r
            assert contrast(r[2], r[3]) >= 4.5, r
            assert r[4] == 90, r
        # Today's bars are coloured by the worst state with a minute, and say it in words
        # (the minute counted first may predate an alert: minutes are counted once each).
        bar_colour = {w: c[0] for w, c in COLOURS.items()}
        today = json.loads(cdp.evaluate(
            "JSON.stringify([...document.querySelectorAll('article.component')].slice(0, 6).map(a => {"
            " const li = a.querySelectorAll('.bars li')[89]; const sr = li.querySelector('.sr');"
            " return [li.title, getComputedStyle(li).backgroundColor, sr ? sr.textContent : null]; }))"))
        for t, colour, sr in today:
            word = t.split(": ", 1)[1].split(",")[0]
            assert bar_colour.get(word, "rgb(208, 212, 217)") == colour, (t, colour)
            if word not in ("Operational", "no data"):
                assert sr is not None and sr.endswith(word), (t, sr)
        # An older day has no data: grey, and said so.
        old = json.loads(cdp.evaluate(
            "(() => { const li = document.querySelector('.bars li');"
            " return JSON.stringify([li.title, getComputedStyle(li).backgroundColor]); })()"
        ))
        assert old[0].endswith(": no data") and old[1] == "rgb(208, 212, 217)", old
        # Scheduled maintenance, in words, with UTC times.
        items = json.loads(cdp.evaluate(
            "JSON.stringify([...document.querySelectorAll('li.maintenance')].map(li => li.textContent))"))
        start, end = want_maintenance["weekly"]
        assert f"Calm: from {start} to {end} (every week)" in items, items
        assert any(i.startswith("In progress: Maintained: from ") for i in items), items
        text = cdp.evaluate("document.body.innerText")
        for secret in ["shop-avail", "maint-avail", "part-other", "internal-reason-x", "internal-weekly-y",
                       "internal-once-z", "buy-flow-internal", "cart-step-internal", "internal-step-path",
                       "buyflow", "slo-agent/", "127.0.0.1", "crawler", "Googlebot"]:
            assert secret not in text, secret
        assert cdp.evaluate("document.scripts.length") == 0
    finally:
        browser.close()
        site.shutdown()
