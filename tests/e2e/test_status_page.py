"""The public status page in a real headless browser (Debian `chromium`): one
agent whose components are in three states (major outage from a paging log,
under maintenance from an exclusion window covering now, operational) plus
47 more operational ones (50 in all). Chromium loads /status over the DevTools
protocol; the test reads the DOM and the computed colours, checks that every
state is in words, and measures the load time."""

import base64
import json
import os
import socket
import struct
import subprocess
import tempfile
import time
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


def write_outage(path, service, now_ms):
    with open(path, "w") as f:
        for m in range(59, -1, -1):
            status = 503 if m < 3 else 200
            for i in range(20):
                ts = now_ms - m * 60_000 - 1_000 - i
                f.write(json.dumps({"ts": ts, "service": service, "path": "/", "status": status}) + "\n")


def test_status_page_in_chromium(agent_factory, tmp_path):
    chromium = need("chromium")
    now_ms = int(time.time() * 1000)
    (tmp_path / "logs").mkdir()
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_ms / 1000 - 3600))
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_ms / 1000 + 3600))
    maint = f'  exclusions:\n    - {{start: "{start}", end: "{end}", reason: internal-reason-x}}\n'
    (tmp_path / "specs.yaml").write_text(
        SPEC.format(name="shop-avail", service="shop", extra="")
        + SPEC.format(name="maint-avail", service="maint", extra=maint)
        + SPEC.format(name="calm-avail", service="calm", extra="")
    )
    write_outage(tmp_path / "logs" / "app.ndjson", "shop", now_ms)
    components = "    - {name: Shop, service: shop}\n    - {name: Maintained, service: maint}\n    - {name: Calm, service: calm}\n"
    components += "".join(f"    - {{name: Extra {i}, service: extra-{i}}}\n" for i in range(47))
    port = free_port()
    (tmp_path / "t").write_text("admin-token-0123456789abcdef")
    agent_factory(
        f"specs: [specs.yaml]\nstate: state.redb\nlisten: 127.0.0.1:{port}\ntick: 100ms\npoll_interval: 50ms\n"
        f"alerts: {{min_events: 200, resolve_after: 5m}}\n"
        f"api:\n  read_requires_token: true\n  tokens:\n    - {{name: ops, role: admin, token_file: t}}\n"
        f"status:\n  title: Acme status\n  components:\n{components}"
        f"sources:\n  - name: logs\n    type: file\n    paths: [\"logs/*.ndjson\"]\n    format: ndjson\n",
        port,
    )
    url = f"http://127.0.0.1:{port}"

    def shop_down():
        with urllib.request.urlopen(url + "/status.json", timeout=5) as r:
            page = json.loads(r.read())
        return page["components"][0]["status"] == "major_outage" and page

    page = wait_until(shop_down, timeout=60, what="Shop in a major outage")
    assert [c["status"] for c in page["components"][:3]] == ["major_outage", "under_maintenance", "operational"]

    devtools_port = free_port()
    profile = tempfile.mkdtemp()
    browser = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--remote-debugging-port={devtools_port}",
         f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        def target():
            with urllib.request.urlopen(f"http://127.0.0.1:{devtools_port}/json", timeout=2) as r:
                pages = [t for t in json.loads(r.read()) if t.get("type") == "page"]
            return pages and pages[0]["webSocketDebuggerUrl"]

        cdp = DevTools(wait_until(target, timeout=30, what="chromium's DevTools"))
        cdp.call("Page.enable")
        # Load /status without a token (reads need one; the page does not), with JS off on the page.
        cdp.call("Emulation.setScriptExecutionDisabled", value=True)
        began = time.monotonic()
        cdp.call("Page.navigate", url=url + "/status")
        wait_until(lambda: cdp.evaluate("document.readyState") == "complete", timeout=10, step=0.01, what="load")
        load_s = time.monotonic() - began
        nav = cdp.evaluate(
            "JSON.stringify(performance.getEntriesByType('navigation').map(e => [e.responseEnd - e.requestStart, e.loadEventEnd - e.startTime])[0])"
        )
        print(f"/status with 50 components: loaded in {load_s * 1000:.0f} ms (navigation timing [response, load] ms: {nav})")

        title = cdp.evaluate("document.querySelector('h1').textContent")
        assert title == "Acme status"
        overall = cdp.evaluate("document.getElementById('overall').textContent")
        assert "major outage" in overall
        rows = cdp.evaluate(
            "JSON.stringify([...document.querySelectorAll('article.component')].map(a => "
            "[a.querySelector('h3').textContent, a.querySelector('.state').textContent, "
            "getComputedStyle(a.querySelector('.state')).backgroundColor, getComputedStyle(a.querySelector('.state')).color, "
            "a.querySelectorAll('.bars li').length]))"
        )
        rows = json.loads(rows)
        assert len(rows) == 50
        by_name = {r[0]: r for r in rows}
        assert by_name["Shop"][1:4] == ["Major outage", "rgb(179, 38, 30)", "rgb(255, 255, 255)"]
        assert by_name["Maintained"][1:4] == ["Under maintenance", "rgb(5, 80, 174)", "rgb(255, 255, 255)"]
        assert by_name["Calm"][1:4] == ["Operational", "rgb(26, 127, 55)", "rgb(255, 255, 255)"]
        assert all(r[4] == 90 for r in rows)
        # Today's bar of Shop is coloured by the worst state with a minute, and says it in words
        # (the minute counted first may predate the alert: minutes are counted once each).
        today = cdp.evaluate(
            "(() => { const li = [...document.querySelectorAll('article.component')][0].querySelectorAll('.bars li')[89];"
            " return JSON.stringify([li.title, getComputedStyle(li).backgroundColor]); })()"
        )
        t, colour = json.loads(today)
        colours = {"Operational": "rgb(26, 127, 55)", "Major outage": "rgb(179, 38, 30)"}
        word = t.split(": ", 1)[1].split(",")[0]
        assert colours[word] == colour, (t, colour)
        # An older day has no data: grey, and said so.
        old = json.loads(cdp.evaluate(
            "(() => { const li = document.querySelector('.bars li');"
            " return JSON.stringify([li.title, getComputedStyle(li).backgroundColor]); })()"
        ))
        assert old[0].endswith(": no data") and old[1] == "rgb(208, 212, 217)", old
        text = cdp.evaluate("document.body.innerText")
        for secret in ["shop-avail", "maint-avail", "internal-reason-x", "slo-agent/", "127.0.0.1"]:
            assert secret not in text, secret
        assert cdp.evaluate("document.scripts.length") == 0
        assert load_s < 2.0, load_s
    finally:
        browser.terminate()
        browser.wait(timeout=10)
