"""The container image (deploy/image/, docs/deploy.md "The image"): deploy/image/build.sh builds
it FROM scratch with podman from a static binary; the image holds nothing but the binary, CA
certificates and the user files, runs as uid 65532, carries the OCI labels; and inside it,
under a read-only root filesystem, `slo-agent --version`, `validate` and the config check of the
rendered central overlay pass, and the agent runs, answers /readyz and /metrics, resolves a name
through the C library (static glibc: `files` and `dns`), and stops cleanly on SIGTERM.

The binary: $SLO_AGENT_IMAGE_BIN, else the static build that tests/run makes
($CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/{release,debug}/slo-agent, built with
`-C target-feature=+crt-static`). In CI (CI=true) tests/run installs podman, so a missing
builder or binary fails; elsewhere the test skips, saying so loudly.

Where `podman run` cannot start containers (a sandbox without cgroup v2 or rlimit rights), the
test retries with cgroupfs, runc and lowered rlimits; failing that too, it runs the binary from
the image's exported root filesystem with chroot (as root) and says so
(SLO_AGENT_IMAGE_RUN=chroot forces that way)."""

import json
import os
import secrets
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from conftest import IN_CI, ROOT, free_port, generate, http_get, utc_date, wait_until

from test_kubernetes import agent_container, cargo_version, one, pod_templates, render

TARGET = Path(os.environ.get("CARGO_TARGET_DIR", "/var/tmp/slo-agent-target"))
SOURCE = "https://example.com/slo-agent.git"  # the label the test passes; build.sh takes --source
EXPECTED_FILES = {
    "etc/group", "etc/nsswitch.conf", "etc/passwd", "etc/ssl/certs/ca-certificates.crt",
    "usr/local/bin/slo-agent",
}


def skip_or_fail(msg):
    if IN_CI:
        pytest.fail(f"{msg} (CI: tests/run provides it)")
    print(f"\nSKIPPING THE IMAGE TEST: {msg}")
    pytest.skip(msg)


def static_binary():
    candidates = [os.environ.get("SLO_AGENT_IMAGE_BIN")] if os.environ.get("SLO_AGENT_IMAGE_BIN") else [
        str(TARGET / "x86_64-unknown-linux-gnu" / p / "slo-agent") for p in ("release", "debug")]
    for c in candidates:
        if c and Path(c).is_file():
            return c
    skip_or_fail(f"no static slo-agent binary at {' or '.join(candidates)} "
                 "(RUSTFLAGS='-C target-feature=+crt-static' cargo build -p slo-agent --features aws "
                 "--target x86_64-unknown-linux-gnu)")


class Podman:
    """podman with its own storage under the test's directory (vfs: no overlay mounts needed)."""

    def __init__(self, root):
        exe = shutil.which("podman")
        if exe is None:
            skip_or_fail("no container builder: podman is not installed (apt-get install podman)")
        self.base = [exe, "--root", str(root / "storage"), "--runroot", str(root / "run"), "--storage-driver", "vfs"]
        self.run_opts = []
        self.mode = "podman run"

    def __call__(self, *args, timeout=300, check=True, **kw):
        r = subprocess.run([*self.base, *map(str, args)], capture_output=True, text=True, timeout=timeout, **kw)
        if check:
            assert r.returncode == 0, f"podman {' '.join(map(str, args))}: {r.stdout}{r.stderr}"
        return r


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    binary = static_binary()
    root = tmp_path_factory.mktemp("image")
    podman = Podman(root)
    tag = f"localhost/slo-agent-test:{cargo_version()}"
    t0 = time.monotonic()
    r = subprocess.run(
        [str(ROOT / "deploy" / "image" / "build.sh"), "--bin", binary, "--tag", tag, "--source", SOURCE,
         "--builder", " ".join(podman.base)],
        capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    print(f"\nimage built in {time.monotonic() - t0:.1f} s from {binary}")
    yield podman, tag, root
    podman("rmi", "-a", "-f", check=False)


def test_build_refuses_a_dynamic_binary(tmp_path):
    """The image has no libc: build.sh refuses a binary that needs one (or no ELF file at all),
    before building."""
    def build(binary):
        return subprocess.run([str(ROOT / "deploy" / "image" / "build.sh"), "--bin", str(binary), "--source", SOURCE,
                               "--builder", "false"], capture_output=True, text=True, timeout=60)
    r = build("/bin/ls" if Path("/bin/ls").is_file() else sys.executable)  # a dynamically linked ELF
    assert r.returncode == 2 and "dynamically linked" in r.stderr, r.stderr
    script = tmp_path / "slo-agent"
    script.write_text("#!/bin/sh\necho slo-agent 0.1.0\n")
    script.chmod(0o755)
    r = build(script)
    assert r.returncode == 2 and "not an ELF executable" in r.stderr, r.stderr


def test_the_image_is_small_static_labelled_and_non_root(image):
    podman, tag, root = image
    info = json.loads(podman("image", "inspect", tag).stdout)[0]
    cfg = info["Config"]
    assert cfg["User"] == "65532:65532"
    assert cfg["Entrypoint"] == ["/usr/local/bin/slo-agent"]
    assert cfg["Cmd"] == ["run", "--config", "/etc/slo-agent/config/agent.yaml"]
    labels = cfg["Labels"]
    assert labels["org.opencontainers.image.version"] == cargo_version()
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.source"] == SOURCE
    assert labels["org.opencontainers.image.title"] == "slo-agent"
    assert len(labels["org.opencontainers.image.revision"]) in (40, 7) or labels["org.opencontainers.image.revision"] == "unknown"
    size = info["Size"]
    print(f"\nimage size: {size / 2**20:.1f} MiB ({size} bytes)")
    # Every file of every layer: the binary, CA certificates, passwd/group, nsswitch.conf and the
    # state directory; no shell, no package manager, no libraries.
    archive = root / "image.tar"
    podman("save", "--format", "oci-archive", "-o", archive, tag)
    files, dirs, owners = set(), set(), {}
    with tarfile.open(archive) as outer:
        index = json.load(outer.extractfile("index.json"))
        manifest_digest = index["manifests"][0]["digest"].split(":")[1]
        manifest = json.load(outer.extractfile(f"blobs/sha256/{manifest_digest}"))
        for layer in manifest["layers"]:
            blob = outer.extractfile(f"blobs/sha256/{layer['digest'].split(':')[1]}")
            with tarfile.open(fileobj=blob, mode="r:*") as lt:
                for m in lt.getmembers():
                    name = m.name.lstrip("./")
                    if m.isdir():
                        dirs.add(name.rstrip("/"))
                    else:
                        files.add(name)
                    owners[name.rstrip("/")] = (m.uid, m.gid, m.mode)
    assert files == EXPECTED_FILES, files
    assert "var/lib/slo-agent" in dirs
    assert owners["var/lib/slo-agent"][:2] == (65532, 65532)
    assert owners["usr/local/bin/slo-agent"][2] & 0o111


class LoopbackDns:
    """A DNS server on 127.0.0.1:53 that answers A queries for one name (NXDOMAIN otherwise);
    None when the port cannot be bound."""

    def __init__(self, name, address):
        self.name, self.address, self.answered, self.sock = name.lower(), address, 0, None

    def __enter__(self):
        import socket
        import threading
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("127.0.0.1", 53))
        except OSError:
            s.close()
            return None
        s.settimeout(0.2)
        self.sock, self.stop = s, threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()
        return self

    def serve(self):
        import struct
        while not self.stop.is_set():
            try:
                q, peer = self.sock.recvfrom(512)
            except OSError:
                continue
            i, labels = 12, []
            while i < len(q) and q[i]:
                labels.append(q[i + 1:i + 1 + q[i]].decode(errors="replace"))
                i += q[i] + 1
            qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
            question = q[12:i + 5]
            hit = ".".join(labels).lower() == self.name
            answers = b""
            if hit and qtype == 1:
                answers = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 5, 4) + bytes(map(int, self.address.split(".")))
                self.answered += 1
            flags = 0x8180 if hit else 0x8183  # a response, recursion available; NXDOMAIN for other names
            header = q[:2] + struct.pack(">HHHHH", flags, 1, 1 if answers else 0, 0, 0)
            self.sock.sendto(header + question + answers, peer)

    def __exit__(self, *exc):
        if self.sock is not None:
            self.stop.set()
            self.thread.join(timeout=5)
            self.sock.close()


def run_in_image(image, *args, mounts=(), network="none", detach=False, timeout=120):
    """Run the image: `podman run`, else the same with cgroupfs/runc/lowered rlimits, else the
    binary from the exported root filesystem with chroot. Returns CompletedProcess or Popen."""
    podman, tag, root = image
    mount_opts = [f"--volume={src}:{dst}:{mode}" for src, dst, mode in mounts]
    common = ["run", "--rm", "--read-only", f"--network={network}", *mount_opts]
    if podman.mode == "chroot":
        return run_chrooted(image, args, mounts, detach, timeout)
    cmd = [*podman.base, *common, *podman.run_opts, tag, *map(str, args)]
    if detach:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def run_chrooted(image, args, mounts, detach, timeout):
    podman, tag, root = image
    rootfs = root / "rootfs"
    if not rootfs.exists():
        rootfs.mkdir()
        cid = podman("create", tag).stdout.strip()
        podman("export", "-o", root / "rootfs.tar", cid)
        podman("rm", cid)
        with tarfile.open(root / "rootfs.tar") as t:
            t.extractall(rootfs, filter="fully_trusted")
        (rootfs / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
        (rootfs / "etc" / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    for src, dst, _ in mounts:
        target = rootfs / dst.lstrip("/")
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, target) if Path(src).is_dir() else shutil.copy(src, target)
        os.chown(target, 65532, 65532)
        for p in target.rglob("*"):
            os.chown(p, 65532, 65532)
    cmd = [shutil.which("chroot") or "/usr/sbin/chroot", "--userspec=65532:65532", str(rootfs), "/usr/local/bin/slo-agent", *map(str, args)]
    env = {"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt", "PATH": "/usr/local/bin"}
    if detach:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def runnable(image):
    """Find a way to run the image here, and say which."""
    podman, tag, root = image
    if os.environ.get("SLO_AGENT_IMAGE_RUN") == "chroot":  # force the fallback (to check it)
        print("\nNOTE: SLO_AGENT_IMAGE_RUN=chroot: running the binary from the exported root filesystem")
        podman.mode = "chroot"
    r = run_in_image(image, "--version")
    if r.returncode != 0:
        first = r.stderr.strip()
        podman.run_opts = ["--cgroup-manager=cgroupfs", "--ulimit=nofile=1024:1024", "--ulimit=nproc=1024:1024"]
        if shutil.which("runc"):
            podman.run_opts.append("--runtime=runc")
        r = run_in_image(image, "--version")
        if r.returncode == 0:
            print(f"\nNOTE: plain `podman run` failed here ({first}); running with {' '.join(podman.run_opts)}")
        else:
            if os.geteuid() != 0 or IN_CI:
                pytest.fail(f"podman run fails here: {first} / {r.stderr.strip()}")
            print(f"\nNOTE: podman cannot run containers here ({first} / {r.stderr.strip()}); running the binary "
                  "from the image's exported root filesystem with chroot instead (its root is not read-only there)")
            podman.mode = "chroot"
            r = run_in_image(image, "--version")
    assert r.returncode == 0, r.stdout + r.stderr
    return image, r.stdout.strip()


def test_version_validate_and_config_check_inside_the_image(runnable, tmp_path):
    image, version = runnable
    assert version == f"slo-agent {cargo_version()}"
    # The central overlay's ConfigMaps and a token for every key, mounted where the pod mounts them.
    docs = render("overlays/central")
    _, pod = [(d, p) for d, p in pod_templates(docs) if d["kind"] == "Deployment"][0]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = []
    for m in agent_container(pod)["volumeMounts"]:
        v = volumes[m["name"]]
        src = tmp_path / m["name"]
        src.mkdir()
        if "configMap" in v:
            for k, text in one(docs, "ConfigMap", v["configMap"]["name"])["data"].items():
                (src / k).write_text(text)
        elif "secret" in v:
            for k in ["read", "deploy", "approve", "backup", "firehose"]:
                (src / k).write_text(secrets.token_hex(32))
        os.chmod(src, 0o755)
        for p in src.iterdir():
            os.chmod(p, 0o644)
        if "persistentVolumeClaim" not in v:
            mounts.append((src, m["mountPath"], "ro"))
    r = run_in_image(image, "validate", "/etc/slo-agent/slo-specs", mounts=mounts)
    assert r.returncode == 0 and "SLOs valid" in r.stdout, r.stdout + r.stderr
    r = run_in_image(image, "iam-policy", "--config", "/etc/slo-agent/config/agent.yaml", mounts=mounts)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "s3:GetObject" in r.stdout


def test_the_agent_runs_in_the_image_read_only_and_non_root(runnable, tmp_path):
    image, _ = runnable
    podman = image[0]
    port = free_port()
    logs, config, state, tokens = (tmp_path / n for n in ("logs", "config", "state", "tokens"))
    for d in (logs, config, state, tokens):
        d.mkdir()
    generate(logs / "cf.log", 500, utc_date(1))
    token = secrets.token_hex(32)
    (tokens / "read").write_text(token)
    (config / "agent.yaml").write_text(
        f"specs: [/etc/slo-agent/slo-specs]\nstate: /var/lib/slo-agent/state.redb\nlisten: 127.0.0.1:{port}\n"
        "api: {read_requires_token: true, tokens: [{name: prometheus, role: read, token_file: /etc/slo-agent/tokens/read}]}\n"
        "sources:\n  - {name: cloudfront, type: file, paths: [/var/log/shop/*.log], format: cloudfront, service: storefront}\n")
    for d in (logs, config, tokens):
        os.chmod(d, 0o755)
        for p in d.iterdir():
            os.chmod(p, 0o644)
    if podman.mode != "chroot":
        os.chown(state, 65532, 65532)  # a volume the agent's user may write, as fsGroup makes it in a pod
    mounts = [(config, "/etc/slo-agent/config", "ro"), (ROOT / "deploy" / "kubernetes" / "base" / "slo-specs",
                                                        "/etc/slo-agent/slo-specs", "ro"),
              (tokens, "/etc/slo-agent/tokens", "ro"), (logs, "/var/log/shop", "ro"), (state, "/var/lib/slo-agent", "rw")]
    proc = run_in_image(image, "run", "--config", "/etc/slo-agent/config/agent.yaml", mounts=mounts, network="host",
                        detach=True)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until(lambda: http_get(url + "/readyz")[0] == 200, timeout=60, what="the agent in the image ready")
        except AssertionError:
            proc.kill()
            raise AssertionError(proc.communicate(timeout=30)[0])
        # /metrics needs the read token; with it, the file source's lines are counted.
        import urllib.error
        import urllib.request
        with pytest.raises(urllib.error.HTTPError) as denied:
            http_get(url + "/metrics")
        assert denied.value.code == 401

        def lines():
            req = urllib.request.Request(url + "/metrics", headers={"Authorization": f"Bearer {token}"})
            text = urllib.request.urlopen(req, timeout=5).read().decode()
            return [ln for ln in text.splitlines() if ln.startswith("slo_agent_ingest_lines_total")
                    and 'source="cloudfront"' in ln and ln.rsplit(" ", 1)[1] == "502"]
        wait_until(lines, timeout=60, what="500 log lines (and 2 header lines) counted")
        # A name through the static C library (getaddrinfo: /etc/hosts), with the CLI's HTTP client.
        r = run_in_image(image, "freeze", "status", "--url", f"http://localhost:{port}", "--token-file",
                         "/etc/slo-agent/tokens/read", "--json", mounts=mounts[:3], network="host")
        assert r.returncode == 0, r.stdout + r.stderr
        assert isinstance(json.loads(r.stdout), (dict, list))
        # A name through DNS (getaddrinfo's `dns` source, /etc/resolv.conf), as AWS endpoints and
        # notification URLs are resolved: a DNS server on 127.0.0.1:53 answers for one name.
        with LoopbackDns("agent.slo-agent.test", "127.0.0.1") as dns:
            if dns is None:
                print("\nNOTE: 127.0.0.1:53 cannot be bound here (not root, or taken): DNS inside the image not checked")
            else:
                resolv = tmp_path / "resolv"
                resolv.mkdir()
                (resolv / "resolv.conf").write_text("nameserver 127.0.0.1\noptions attempts:1 timeout:2\n")
                os.chmod(resolv, 0o755)
                os.chmod(resolv / "resolv.conf", 0o644)
                r = run_in_image(image, "freeze", "status", "--url", f"http://agent.slo-agent.test:{port}",
                                 "--token-file", "/etc/slo-agent/tokens/read", "--json",
                                 mounts=[*mounts[:3], (resolv / "resolv.conf", "/etc/resolv.conf", "ro")],
                                 network="host")
                assert r.returncode == 0, r.stdout + r.stderr
                assert dns.answered, "the agent's CLI did not ask the DNS server"
    finally:
        if podman.mode == "chroot":
            proc.terminate()
        else:
            proc.send_signal(15)  # podman run forwards SIGTERM to the agent
        out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, out
    # The state file was written on the volume, not in the read-only image.
    state_dir = state if podman.mode != "chroot" else image[2] / "rootfs" / "var" / "lib" / "slo-agent"
    assert (state_dir / "state.redb").stat().st_size > 0
