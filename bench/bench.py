#!/usr/bin/env python3
"""Side-by-side benchmark: wharf against CNCF distribution (`docker-registry`), same workload,
same machine, interleaved, plus the machine's ceilings (SHA-256, disk write+fsync, nginx).

Python 3.11 standard library + wrk + curl + nginx only. Every request checks its status and
the digest (or bytes) of what came back; a wrong answer aborts the run instead of becoming a
number. Run through `bench/run.sh`, which builds wharf first.
"""

import argparse
import base64
import concurrent.futures as futures
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

MiB = 1024 * 1024
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A wrong answer: the run stops, since a figure for a wrong answer means nothing."""


def check(cond, what):
    if not cond:
        raise BenchError(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256_file(path, chunk=4 * MiB):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return "sha256:" + h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Servers


class Server:
    """A registry (or nginx) process on a free loopback port, with CPU and peak-RSS probes."""

    def __init__(self, name, argv, port, env=None, log=None):
        self.name = name
        self.port = port
        self.host = f"127.0.0.1:{port}"
        self.log = open(log, "wb") if log else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            argv, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.peak_kib = 0

    def wait_ready(self, path="/v2/", timeout=30, ready=(200,)):
        deadline = time.time() + timeout
        while time.time() < deadline:
            check(self.proc.poll() is None, f"{self.name} exited with {self.proc.returncode}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", path)
                r = c.getresponse()
                r.read()
                c.close()
                if r.status in ready:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise BenchError(f"{self.name} not ready after {timeout}s")

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # utime and stime are fields 14 and 15 of stat(5); fields[0] here is field 3.
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def hwm_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def reset_hwm(self):
        """Peak RSS per task: writing 5 to clear_refs resets VmHWM to the current RSS."""
        self.peak_kib = max(self.peak_kib, self.hwm_kib())
        try:
            with open(f"/proc/{self.proc.pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass

    def stop(self):
        if self.proc.poll() is None:
            self.peak_kib = max(self.peak_kib, self.hwm_kib())
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def registry_config(root, port, extra=""):
    # The same file for both; accesslog off and level warn so neither pays for request logging.
    return (
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root}\n"
        "  delete:\n    enabled: true\n"
        "  maintenance:\n    uploadpurging:\n      enabled: false\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        + extra
    )


def start_registry(name, argv0, work, root=None, htpasswd=None):
    """A registry on a fresh root, or on `root` (shared, read-only use) with htpasswd auth."""
    home = os.path.join(work, name + ("-htpasswd" if htpasswd else ""))
    os.makedirs(home)
    if root is None:
        root = os.path.join(home, "root")
        os.makedirs(root)
    port = free_port()
    extra = f"auth:\n  htpasswd:\n    realm: bench\n    path: {htpasswd}\n" if htpasswd else ""
    cfg = os.path.join(home, "config.yml")
    with open(cfg, "w") as f:
        f.write(registry_config(root, port, extra))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env.setdefault("RUST_LOG", "warn")
    s = Server(name, argv0 + [cfg], port, env=env, log=os.path.join(home, "log.txt"))
    s.root = root
    s.wait_ready(ready=(401,) if htpasswd else (200,))
    return s


def start_nginx(work, docroot):
    home = os.path.join(work, "nginx")
    os.makedirs(home)
    port = free_port()
    cfg = os.path.join(home, "nginx.conf")
    with open(cfg, "w") as f:
        f.write(
            f"""daemon off;
worker_processes 2;
pid {home}/nginx.pid;
error_log {home}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path {home}/body;
  proxy_temp_path {home}/proxy;
  fastcgi_temp_path {home}/fastcgi;
  uwsgi_temp_path {home}/uwsgi;
  scgi_temp_path {home}/scgi;
  server {{
    listen 127.0.0.1:{port};
    root {docroot};
    location / {{ }}
  }}
}}
"""
        )
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    s = Server("nginx", [nginx, "-c", cfg, "-p", home], port)
    # nginx has no /v2/; wait for a file we know.
    s.wait_ready(path="/ready")
    return s


# ---------------------------------------------------------------------------------------------
# Client


class Client:
    """One keep-alive HTTP/1.1 connection; every call checks the status it expects."""

    def __init__(self, host):
        self.host = host
        self.conn = None

    def _conn(self):
        if self.conn is None:
            h, p = self.host.split(":")
            self.conn = http.client.HTTPConnection(h, int(p), timeout=300, blocksize=MiB)
        return self.conn

    def request(self, method, path, body=None, headers=None, expect=(200,), read=True):
        c = self._conn()
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        data = r.read() if read else None
        if r.status not in expect:
            if data is None:
                data = r.read()
            self.close()
            raise BenchError(f"{method} {path}: status {r.status}, wanted {expect}: {data[:300]!r}")
        if r.getheader("Connection", "").lower() == "close":
            self.close()
        return r, data

    def get_hashed(self, path, headers=None, expect=(200,)):
        """GET a body without keeping it: returns (response, size, sha256 digest)."""
        c = self._conn()
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        if r.status not in expect:
            body = r.read()
            self.close()
            raise BenchError(f"GET {path}: status {r.status}: {body[:300]!r}")
        h = hashlib.sha256()
        buf = bytearray(MiB)
        view = memoryview(buf)
        size = 0
        while True:
            n = r.readinto(view)
            if not n:
                break
            h.update(view[:n])
            size += n
        return r, size, "sha256:" + h.hexdigest()

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def start_upload(cl, repo):
    r, _ = cl.request("POST", f"/v2/{repo}/blobs/uploads/", expect=(202,))
    return location_path(r.getheader("Location"))


def location_path(loc):
    check(loc, "upload without Location")
    loc = re.sub(r"^https?://[^/]+", "", loc)
    return loc


def with_query(path, query):
    return path + ("&" if "?" in path else "?") + query


def put_blob(cl, repo, data_or_file, size, digest):
    """Monolithic upload (POST, then PUT with the whole body), distribution 2.8's way."""
    loc = start_upload(cl, repo)
    body = data_or_file
    r, _ = cl.request(
        "PUT",
        with_query(loc, f"digest={digest}"),
        body=body,
        headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        expect=(201,),
    )
    check(r.getheader("Docker-Content-Digest") == digest, f"upload answered wrong digest for {repo}")


class FileSlice:
    """The next `length` bytes of an open file, read as the request body is sent."""

    def __init__(self, f, length):
        self.f = f
        self.left = length

    def read(self, n=-1):
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n)
        self.left -= len(data)
        return data


def put_chunked(cl, repo, path, size, chunk, digest):
    """PATCHes of `chunk` bytes, each streamed from the file like the monolithic body, so
    the two rows differ in the protocol only, not in how the client reads."""
    loc = start_upload(cl, repo)
    with open(path, "rb") as f:
        off = 0
        while off < size:
            length = min(chunk, size - off)
            end = off + length - 1
            r, _ = cl.request(
                "PATCH",
                loc,
                body=FileSlice(f, length),
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{off}-{end}",
                    "Content-Length": str(length),
                },
                expect=(202,),
            )
            check(r.getheader("Range") == f"0-{end}", f"PATCH Range {r.getheader('Range')} != 0-{end}")
            check(f.tell() == off + length, "chunked upload: the body was not sent whole")
            loc = location_path(r.getheader("Location"))
            off += length
    r, _ = cl.request(
        "PUT", with_query(loc, f"digest={digest}"), headers={"Content-Length": "0"}, expect=(201,)
    )
    check(r.getheader("Docker-Content-Digest") == digest, "chunked upload: wrong digest")


def manifest_bytes(config, layer, i):
    m = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": config[1], "digest": config[0]},
        "layers": [
            {"mediaType": DOCKER_LAYER, "size": layer[1], "digest": layer[0]},
            # A per-manifest URL-only foreign layer would need extra checks; instead make each
            # manifest unique through the layer list order and a repeated tiny layer.
        ],
    }
    # Unique bytes per manifest without new blobs: trailing whitespace spells the index in
    # binary (space 0, tab 1), so every manifest stays the size of a real one (~500 bytes).
    pad = format(i, "b").replace("0", " ").replace("1", "\t")
    return (json.dumps(m, indent=3) + pad + "\n").encode()


def put_manifest(cl, repo, ref, body):
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    r, _ = cl.request(
        "PUT",
        f"/v2/{repo}/manifests/{ref}",
        body=body,
        headers={"Content-Type": DOCKER_MANIFEST},
        expect=(201,),
    )
    check(r.getheader("Docker-Content-Digest") == digest, f"manifest PUT {repo}:{ref} wrong digest")
    return digest


# ---------------------------------------------------------------------------------------------
# wrk


def run_wrk(url, seconds, conns, headers=(), script=None):
    argv = ["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    for h in headers:
        argv += ["-H", h]
    if script:
        argv += ["-s", script]
    out = subprocess.run(argv + [url], capture_output=True, text=True, check=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    check(m, f"wrk output unparsed: {out}")
    rps = float(m.group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    check(not bad, f"wrk {url}: {bad and bad.group(1)} non-2xx answers")
    errs = re.search(r"Socket errors:.*", out)
    check(not errs, f"wrk {url}: {errs and errs.group(0)}")
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    p99ms = float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan")
    return rps, p99ms


# ---------------------------------------------------------------------------------------------
# The workload


class Row:
    def __init__(self, task, unit, higher_better=True, moved=None):
        self.task, self.unit, self.higher = task, unit, higher_better
        self.moved = moved  # bytes uploaded per repetition, for CPU seconds per GiB
        self.values = {}  # server -> [figures]
        self.cpu = {}
        self.hwm = {}
        self.extra = {}

    def add(self, server, value, cpu, hwm_kib):
        self.values.setdefault(server, []).append(value)
        self.cpu[server] = self.cpu.get(server, 0.0) + cpu
        self.hwm[server] = max(self.hwm.get(server, 0), hwm_kib)

    def figure(self, server):
        v = self.values.get(server)
        return statistics.median(v) if v else None


class Bench:
    def __init__(self, args, work, servers, files):
        self.a = args
        self.work = work
        self.servers = servers  # name -> Server
        self.files = files
        self.rows = []
        self.notes = []

    def measure(self, row, fn):
        """Runs fn(server) for each server, alternating the order per repetition."""
        names = list(self.servers)
        for rep in range(self.a.reps):
            order = names if rep % 2 == 0 else names[::-1]
            for name in order:
                s = self.servers[name]
                s.reset_hwm()
                c0 = s.cpu_seconds()
                value = fn(s, rep)
                cpu = s.cpu_seconds() - c0
                hwm = s.hwm_kib()
                row.add(name, value, cpu, hwm)
        self.rows.append(row)
        self.print_row(row)

    def print_row(self, row):
        figs = "  ".join(f"{n}={row.figure(n):.1f}" for n in self.servers)
        print(f"  {row.task}: {figs} {row.unit}", file=sys.stderr, flush=True)

    # -- uploads -------------------------------------------------------------------------------

    def fresh_blob(self, size, rep_tag):
        """The base file of `size` with a new 16-byte head, so every upload is a new blob."""
        path = self.files[size]
        with open(path, "r+b") as f:
            f.write(os.urandom(16))
        return path, sha256_file(path)

    def monolithic(self, size, count):
        row = Row(f"monolithic upload {fmt_size(size)}" + (f" x{count}" if count > 1 else ""),
                  "MiB/s", moved=count * size)

        def run(s, rep):
            cl = Client(s.host)
            total = 0.0
            for _ in range(count):
                path, digest = self.fresh_blob(size, rep)
                with open(path, "rb") as f:
                    t0 = time.perf_counter()
                    put_blob(cl, f"z/up{size}", f, size, digest)
                    total += time.perf_counter() - t0
            cl.close()
            return count * size / MiB / total

        self.measure(row, run)

    def chunked(self, size, chunk):
        row = Row(f"chunked upload {fmt_size(size)} in {fmt_size(chunk)} chunks", "MiB/s",
                  moved=size)

        def run(s, rep):
            path, digest = self.fresh_blob(size, rep)
            cl = Client(s.host)
            t0 = time.perf_counter()
            put_chunked(cl, "z/chunked", path, size, chunk, digest)
            dt = time.perf_counter() - t0
            cl.close()
            return size / MiB / dt

        self.measure(row, run)

    def concurrent_pushes(self):
        n, size = self.a.clients, self.a.client_size
        row = Row(f"{n} clients x {fmt_size(size)} blob uploads at once", "MiB/s",
                  moved=n * size)
        base = os.urandom(size)

        def run(s, rep):
            # a new head per client and repetition, so every upload is a new blob
            blobs = []
            for _ in range(n):
                data = os.urandom(16) + base[16:]
                blobs.append((data, "sha256:" + hashlib.sha256(data).hexdigest()))

            def one(i):
                cl = Client(s.host)
                data, digest = blobs[i]
                put_blob(cl, f"z/push{i}", data, size, digest)
                cl.close()

            with futures.ThreadPoolExecutor(n) as pool:
                t0 = time.perf_counter()
                list(pool.map(one, range(n)))
                dt = time.perf_counter() - t0
            return n * size / MiB / dt

        self.measure(row, run)

    # -- pulls ---------------------------------------------------------------------------------

    def setup_pull_blobs(self):
        """Uploads (untimed) the big blob and the concurrent-pull blobs to every server."""
        big = self.a.get_size
        path = self.files[big]
        self.big_digest = sha256_file(path)
        self.big_path = path
        n, size = self.a.clients, self.a.client_size
        self.small = []
        for i in range(n):
            data = os.urandom(size)
            self.small.append((data, "sha256:" + hashlib.sha256(data).hexdigest()))
        docroot = os.path.join(self.work, "www")
        os.makedirs(docroot, exist_ok=True)
        os.link(path, os.path.join(docroot, "big"))
        for i, (data, _) in enumerate(self.small):
            with open(os.path.join(docroot, f"small{i}"), "wb") as f:
                f.write(data)
        with open(os.path.join(docroot, "ready"), "w") as f:
            f.write("ok")
        self.docroot = docroot
        for s in self.servers.values():
            cl = Client(s.host)
            with open(path, "rb") as f:
                put_blob(cl, "z/pull", f, big, self.big_digest)
            for data, digest in self.small:
                put_blob(cl, "z/pull", data, len(data), digest)
            cl.close()

    def blob_url(self, s, digest):
        return f"/v2/z/pull/blobs/{digest}"

    def get_big(self, nginx):
        row = Row(f"blob GET {fmt_size(self.a.get_size)}", "MiB/s")

        def run(s, rep):
            cl = Client(s.host)
            url = "/big" if s is nginx else self.blob_url(s, self.big_digest)
            t0 = time.perf_counter()
            _, size, digest = cl.get_hashed(url)
            dt = time.perf_counter() - t0
            cl.close()
            check(size == self.a.get_size and digest == self.big_digest, f"{s.name}: GET wrong blob")
            return size / MiB / dt

        self.measure_with_ceiling(row, run, nginx)

    def range_gets(self, nginx):
        count = self.a.ranges
        row = Row(f"1 MiB Range GETs (x{count}, one connection)", "req/s")
        rnd = random.Random(7)
        size = self.a.get_size
        offsets = [rnd.randrange(0, size - MiB) for _ in range(count)]
        expected = {}
        with open(self.big_path, "rb") as f:
            for off in offsets:
                f.seek(off)
                expected[off] = hashlib.sha256(f.read(MiB)).hexdigest()

        def run(s, rep):
            cl = Client(s.host)
            url = "/big" if s is nginx else self.blob_url(s, self.big_digest)
            t0 = time.perf_counter()
            for off in offsets:
                r, data = cl.request("GET", url, headers={"Range": f"bytes={off}-{off + MiB - 1}"},
                                     expect=(206,))
                check(hashlib.sha256(data).hexdigest() == expected[off], f"{s.name}: range bytes wrong")
                check(r.getheader("Content-Range") == f"bytes {off}-{off + MiB - 1}/{size}",
                      f"{s.name}: Content-Range {r.getheader('Content-Range')}")
            dt = time.perf_counter() - t0
            cl.close()
            return count / dt

        self.measure_with_ceiling(row, run, nginx)

    def concurrent_pulls(self, nginx):
        n, size, rounds = self.a.clients, self.a.client_size, self.a.client_rounds
        row = Row(f"{n} clients x {fmt_size(size)} blob GETs (x{rounds} each)", "MiB/s")

        def one(s, i):
            cl = Client(s.host)
            data, digest = self.small[i]
            url = f"/small{i}" if s is nginx else self.blob_url(s, digest)
            for _ in range(rounds):
                _, got, d = cl.get_hashed(url)
                check(got == size and d == digest, f"{s.name}: concurrent GET wrong blob")
            cl.close()

        def run(s, rep):
            with futures.ThreadPoolExecutor(n) as pool:
                t0 = time.perf_counter()
                list(pool.map(lambda i: one(s, i), range(n)))
                dt = time.perf_counter() - t0
            return n * rounds * size / MiB / dt

        self.measure_with_ceiling(row, run, nginx)

    def measure_with_ceiling(self, row, run, nginx):
        self.measure(row, run)
        if nginx is not None:
            vals = [run(nginx, rep) for rep in range(self.a.reps)]
            row.extra["nginx"] = statistics.median(vals)

    # -- manifests, tags, catalog --------------------------------------------------------------

    def setup_image(self, s, repo):
        cl = Client(s.host)
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
                             "diff_ids": []}}).encode()
        layer = os.urandom(1024)
        out = []
        for data in (config, layer):
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            put_blob(cl, repo, data, len(data), digest)
            out.append((digest, len(data)))
        cl.close()
        return out

    def manifest_puts(self):
        count = self.a.manifests
        row = Row(f"manifest PUT x{count} (new tag each, one connection)", "req/s")
        # A repository per repetition: the tags/list rows want exactly `count` tags in z/tags.
        repos = ["z/tags"] + [f"z/tags-{rep}" for rep in range(1, self.a.reps)]
        images = {(s.name, repo): self.setup_image(s, repo)
                  for s in self.servers.values() for repo in repos}
        self.images = {s.name: images[(s.name, "z/tags")] for s in self.servers.values()}

        def run(s, rep):
            config, layer = images[(s.name, repos[rep])]
            cl = Client(s.host)
            bodies = [manifest_bytes(config, layer, rep * count + i) for i in range(count)]
            t0 = time.perf_counter()
            for i, body in enumerate(bodies):
                put_manifest(cl, repos[rep], f"t{rep}-{i:05d}", body)
            dt = time.perf_counter() - t0
            cl.close()
            return count / dt

        self.measure(row, run)
        self.tags = sorted(f"t0-{i:05d}" for i in range(count))

    def wrk_rows(self):
        # One manifest tagged "latest", fetched by tag; one blob HEAD.
        head_lua = os.path.join(self.work, "head.lua")
        with open(head_lua, "w") as f:
            f.write('wrk.method = "HEAD"\n')
        self.hot = {}
        for s in self.servers.values():
            config, layer = self.images[s.name]
            body = manifest_bytes(config, layer, 10**6)
            digest = put_manifest(Client(s.host), "z/tags", "latest", body)
            cl = Client(s.host)
            _, got = cl.request("GET", "/v2/z/tags/manifests/latest", headers={"Accept": DOCKER_MANIFEST})
            check(got == body, f"{s.name}: manifest GET returned other bytes")
            # wrk's parser waits for a body after a HEAD answer with a non-zero Content-Length
            # (wg/wrk#198), so the HEAD row uses the empty blob: same lookups, no body either way.
            empty = "sha256:" + hashlib.sha256(b"").hexdigest()
            put_blob(cl, "z/tags", b"", 0, empty)
            r, _ = cl.request("HEAD", f"/v2/z/tags/blobs/{empty}", read=True)
            check(r.getheader("Content-Length") == "0" and
                  r.getheader("Docker-Content-Digest") == empty, f"{s.name}: HEAD wrong")
            cl.close()
            self.hot[s.name] = (digest, empty)

        secs = self.a.wrk_seconds
        for label, make in (
            ("manifest GET by tag", lambda s: (f"http://{s.host}/v2/z/tags/manifests/latest",
                                               [f"Accept: {DOCKER_MANIFEST}"], None)),
            ("blob HEAD (empty blob)", lambda s: (f"http://{s.host}/v2/z/tags/blobs/{self.hot[s.name][1]}",
                                     [], head_lua)),
        ):
            row = Row(f"{label}, wrk 64 connections", "req/s")
            p99 = {}

            def run(s, rep, make=make, p99=p99):
                url, hdrs, script = make(s)
                rps, p = run_wrk(url, secs, 64, hdrs, script)
                p99.setdefault(s.name, []).append(p)
                return rps

            self.measure(row, run)
            self.p99_row(label, p99)
        self.manifest_gets_during_pull(secs)

    def p99_row(self, label, p99):
        prow = Row(f"  {label} p99 latency", "ms", higher_better=False)
        for n, vals in p99.items():
            for v in vals:
                prow.values.setdefault(n, []).append(v)
        self.rows.append(prow)

    def manifest_gets_during_pull(self, secs):
        """Manifest GETs while one client pulls the big blob over and over: a transfer must not
        starve the small requests sharing the server with it."""
        label = f"manifest GET by tag during {fmt_size(self.a.get_size)} blob pulls"
        row = Row(f"{label}, wrk 64 connections", "req/s")
        p99 = {}

        def run(s, rep):
            stop = threading.Event()
            pulled = []

            def pull():
                cl = Client(s.host)
                while not stop.is_set():
                    _, size, digest = cl.get_hashed(self.blob_url(s, self.big_digest))
                    pulled.append(size == self.a.get_size and digest == self.big_digest)
                cl.close()

            puller = threading.Thread(target=pull)
            puller.start()
            try:
                rps, p = run_wrk(f"http://{s.host}/v2/z/tags/manifests/latest", secs, 64,
                                 [f"Accept: {DOCKER_MANIFEST}"])
            finally:
                stop.set()
                puller.join()
            check(pulled and all(pulled), f"{s.name}: blob pull during manifest GETs went wrong")
            p99.setdefault(s.name, []).append(p)
            return rps

        self.measure(row, run)
        self.p99_row(label, p99)

    def htpasswd_row(self, argv0s):
        """manifest GET by tag with `auth: htpasswd` on both, the same bcrypt file (cost 5, as
        `htpasswd -B`) and the same storage roots as the open servers; wrk sends Basic auth."""
        user, password = "bench", "bench-password"
        line = subprocess.run([self.a.wharf, "htpasswd", "-Bbn", user, password], check=True,
                              capture_output=True, text=True).stdout
        path = os.path.join(self.work, "htpasswd")
        with open(path, "w") as f:
            f.write(line)
        basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        open_servers = self.servers
        auth = {}
        try:
            for name, s in open_servers.items():
                auth[name] = start_registry(name, argv0s[name], self.work, root=s.root,
                                            htpasswd=path)
            for name, s in auth.items():
                cl = Client(s.host)
                cl.request("GET", "/v2/z/tags/manifests/latest", expect=(401,))
                _, got = cl.request("GET", "/v2/z/tags/manifests/latest",
                                    headers={"Accept": DOCKER_MANIFEST, "Authorization": basic})
                digest = "sha256:" + hashlib.sha256(got).hexdigest()
                check(digest == self.hot[name][0], f"{name} (htpasswd): manifest GET wrong bytes")
                cl.request("GET", "/v2/", headers={"Authorization": "Basic Ym9ndXM6eA=="},
                           expect=(401,))
                cl.close()
            self.servers = auth
            row = Row("manifest GET by tag, htpasswd auth, wrk 64 connections", "req/s")
            secs = self.a.wrk_seconds

            def run(s, rep):
                rps, _ = run_wrk(f"http://{s.host}/v2/z/tags/manifests/latest", secs, 64,
                                 [f"Accept: {DOCKER_MANIFEST}", f"Authorization: {basic}"])
                return rps

            self.measure(row, run)
        finally:
            self.servers = open_servers
            for s in auth.values():
                s.stop()

    def tag_lists(self):
        count = self.a.manifests
        reqs = self.a.list_reqs
        for label, query, expect in (
            (f"tags/list of {count} tags", "", self.tags + ["latest"]),
            (f"tags/list of {count} tags, n=100", "?n=100", sorted(self.tags + ["latest"])[:100]),
        ):
            row = Row(label, "ms/req", higher_better=False)

            def run(s, rep, query=query, expect=expect):
                cl = Client(s.host)
                t0 = time.perf_counter()
                everything = sorted(self.tags + ["latest"])
                for _ in range(reqs):
                    _, body = cl.request("GET", f"/v2/z/tags/tags/list{query}")
                    got = sorted(json.loads(body)["tags"])
                    if query and got == everything and len(everything) > 100:
                        # distribution 2.8 ignores `n` on tags/list: complete, so not wrong.
                        self.notes.append(f"{s.name} ignores n on tags/list (answers all tags)")
                    else:
                        check(got == sorted(expect), f"{s.name}: tags/list{query} wrong")
                dt = time.perf_counter() - t0
                cl.close()
                return dt / reqs * 1000

            self.measure(row, run)

    def catalog(self):
        count = self.a.repos
        names = [f"c/r{i:04d}" for i in range(count)]
        for s in self.servers.values():
            cl = Client(s.host)
            _, layer = self.images[s.name]
            for name in names:
                r, _ = cl.request("POST", f"/v2/{name}/blobs/uploads/?mount={layer[0]}&from=z/tags",
                                  expect=(201,))
            cl.close()
        row = Row(f"_catalog of {count} repositories (n={count})", "ms/req", higher_better=False)

        def run(s, rep):
            cl = Client(s.host)
            t0 = time.perf_counter()
            for _ in range(self.a.list_reqs):
                _, body = cl.request("GET", f"/v2/_catalog?n={count}")
                got = json.loads(body)["repositories"]
                check(got == names, f"{s.name}: _catalog wrong ({len(got)} names)")
            dt = time.perf_counter() - t0
            cl.close()
            return dt / self.a.list_reqs * 1000

        self.measure(row, run)


def fmt_size(n):
    return f"{n // MiB} MiB" if n >= MiB else f"{n // 1024} KiB"


# ---------------------------------------------------------------------------------------------
# Ceilings


def ceilings(args, work, big_path):
    out = []
    size = os.path.getsize(big_path)
    sha256_file(big_path)  # into page cache
    t0 = time.perf_counter()
    sha256_file(big_path, MiB)
    out.append(("SHA-256, Python hashlib over a file in page cache", size / MiB / (time.perf_counter() - t0), "MiB/s"))
    if shutil.which("sha256sum"):
        t0 = time.perf_counter()
        subprocess.run(["sha256sum", big_path], check=True, capture_output=True)
        out.append(("SHA-256, sha256sum", size / MiB / (time.perf_counter() - t0), "MiB/s"))
    target = os.path.join(work, "dd.out")
    n = max(1, args.get_size // MiB)
    t0 = time.perf_counter()
    subprocess.run(["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={n}", "conv=fsync"],
                   check=True, capture_output=True)
    out.append((f"disk write+fsync, dd {n} MiB bs=1M conv=fsync", n / (time.perf_counter() - t0), "MiB/s"))
    os.unlink(target)
    # the same around the page cache, as wharf writes uploads where the filesystem allows it
    t0 = time.perf_counter()
    direct = subprocess.run(["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={n}",
                             "oflag=direct", "conv=fsync"], capture_output=True)
    if direct.returncode == 0:
        out.append((f"disk write+fsync, dd {n} MiB bs=1M oflag=direct conv=fsync",
                    n / (time.perf_counter() - t0), "MiB/s"))
    if os.path.exists(target):
        os.unlink(target)
    out += receive_and_hash(2 * args.get_size)
    return out


def receive_and_hash(size):
    """The floor under a digest-checked upload: one loopback TCP stream received in 1 MiB reads
    and hashed with SHA-256 (OpenSSL's, through hashlib), no HTTP, no disk. The receiver's CPU
    per GiB is the least any registry can spend on an upload it verifies as it streams."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        sender = subprocess.Popen([sys.executable, "-c", (
            "import socket, sys\n"
            "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n"
            "buf = bytes(range(256)) * 4096\n"
            "for _ in range(int(sys.argv[2])): s.sendall(buf)\n"
            "s.close()\n"), str(srv.getsockname()[1]), str(size // MiB)])
        conn, _ = srv.accept()
    buf = bytearray(MiB)
    view = memoryview(buf)
    h = hashlib.sha256()
    got = 0
    with conn:
        c0, t0 = time.thread_time(), time.perf_counter()
        while n := conn.recv_into(buf):
            h.update(view[:n])
            got += n
        cpu, dt = time.thread_time() - c0, time.perf_counter() - t0
    check(sender.wait() == 0 and got == size // MiB * MiB, "receive-and-hash: short stream")
    gib = got / (1 << 30)
    return [("loopback TCP receive + SHA-256, one stream, no HTTP, no disk", got / MiB / dt, "MiB/s"),
            ("  its receiver's CPU (the floor of a digest-checked upload)", cpu / gib, "CPU s/GiB")]


# ---------------------------------------------------------------------------------------------


def table(bench, servers, ceil, nginx_wrk):
    names = list(servers)
    lines = []
    hdr = ["task", "unit"] + names + [f"{names[0]}/{names[1]}", "nginx"] + \
          [f"{n} CPU s" for n in names] + [f"{n} peak RSS MiB" for n in names]
    lines.append("| " + " | ".join(hdr) + " |")
    lines.append("|" + "---|" * len(hdr))

    def f(v):
        if v is None:
            return ""
        return f"{v:,.0f}" if v >= 100 else f"{v:.2f}" if v < 10 else f"{v:.1f}"

    for r in bench.rows:
        a, b = r.figure(names[0]), r.figure(names[1])
        ratio = ""
        if a and b:
            ratio = f"{(a / b if r.higher else b / a):.2f}x"
        cells = [r.task, r.unit, f(a), f(b), ratio, f(r.extra.get("nginx"))]
        cells += [f"{r.cpu[n]:.2f}" if n in r.cpu else "" for n in names]
        cells += [f"{r.hwm[n] / 1024:.0f}" if n in r.hwm else "" for n in names]
        lines.append("| " + " | ".join(cells) + " |")
    total_cpu = {n: sum(r.cpu.get(n, 0) for r in bench.rows) for n in names}
    peak = {n: max([servers[n].peak_kib] + [r.hwm.get(n, 0) for r in bench.rows]) for n in names}
    cells = ["whole run", ""] + ["", "", "", ""]
    cells += [f"{total_cpu[n]:.1f}" for n in names] + [f"{peak[n] / 1024:.0f}" for n in names]
    lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Ratio: {names[0]}'s advantage (>1 = {names[0]} better; for ms rows, {names[1]}/{names[0]}). "
                 "Figures are medians of the repetitions; CPU s are summed over them; peak RSS is "
                 "VmHWM, reset before each task.")
    uploads = [r for r in bench.rows if r.moved]
    if uploads:
        lines.append("")
        lines.append("| upload task | " + " | ".join(f"{n} CPU s/GiB" for n in names) + " |")
        lines.append("|---|" + "---|" * len(names))
        for r in uploads:
            per = [r.cpu[n] / (len(r.values[n]) * r.moved / (1 << 30)) for n in names]
            lines.append(f"| {r.task} | " + " | ".join(f"{v:.2f}" for v in per) + " |")
    lines.append("")
    lines.append("| machine ceiling | figure | unit |")
    lines.append("|---|---|---|")
    for label, v, unit in ceil:
        lines.append(f"| {label} | {f(v)} | {unit} |")
    for label, v, unit in nginx_wrk:
        lines.append(f"| {label} | {f(v)} | {unit} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes: proves the bench works")
    p.add_argument("--wharf", required=True, help="wharf binary (release build)")
    p.add_argument("--distribution", default="docker-registry",
                   help="the server to compare with; anything run as `BIN serve CONFIG`")
    p.add_argument("--name", default="distribution",
                   help="its name in the table (e.g. wharf-before, to measure a change)")
    p.add_argument("--out", help="also write the markdown table here")
    p.add_argument("--reps", type=int)
    p.add_argument("--only", default="uploads,gets,manifests,catalog",
                   help="comma-separated task groups to run: uploads, gets (blob GETs, ranges, "
                        "concurrent pulls), manifests (PUTs, wrk rows, auth, tag lists), catalog")
    a = p.parse_args()
    only = set(a.only.split(","))
    unknown = only - {"uploads", "gets", "manifests", "catalog"}
    if unknown:
        sys.exit(f"bench: unknown --only groups {sorted(unknown)}")
    if a.quick:
        sizes = dict(up=[MiB, 4 * MiB], chunked=(8 * MiB, MiB), get_size=8 * MiB, clients=4,
                     client_size=MiB, client_rounds=2, ranges=10, manifests=50, repos=50,
                     wrk_seconds=1, list_reqs=5, reps=1, small_count=5)
    else:
        sizes = dict(up=[MiB, 64 * MiB, 512 * MiB], chunked=(512 * MiB, 8 * MiB),
                     get_size=512 * MiB, clients=32, client_size=16 * MiB, client_rounds=2,
                     ranges=200, manifests=1000, repos=1000, wrk_seconds=5, list_reqs=50, reps=3,
                     small_count=50)
    for k, v in sizes.items():
        if k != "reps" or a.reps is None:
            setattr(a, k, v)
    for prog in ("wrk", a.distribution):
        if not shutil.which(prog):
            sys.exit(f"bench: {prog} not found")
    nginx_ok = bool(shutil.which("nginx") or os.path.exists("/usr/sbin/nginx"))
    if not nginx_ok and os.environ.get("CI") == "true":
        sys.exit("bench: nginx not found (CI=true)")

    work = tempfile.mkdtemp(prefix="wharf-bench-")
    os.chmod(work, 0o755)  # nginx workers run as nobody
    servers = {}
    nginx = None
    try:
        files = {}
        for size in set(a.up + [a.chunked[0], a.get_size]):
            path = os.path.join(work, f"data-{size}")
            with open(path, "wb") as f:
                left = size
                while left:
                    n = min(left, 8 * MiB)
                    f.write(os.urandom(n))
                    left -= n
            files[size] = path
        servers["wharf"] = start_registry("wharf", [a.wharf, "serve"], work)
        servers[a.name] = start_registry(a.name, [a.distribution, "serve"], work)
        b = Bench(a, work, servers, files)
        print(f"bench: work dir {work}; wharf :{servers['wharf'].port}, "
              f"{a.name} :{servers[a.name].port}", file=sys.stderr)

        if "uploads" in only:
            for size in a.up:
                b.monolithic(size, a.small_count if size <= MiB else 1)
            b.chunked(*a.chunked)
            b.concurrent_pushes()
        b.setup_pull_blobs()
        if nginx_ok:
            nginx = start_nginx(work, b.docroot)
        if "gets" in only:
            b.get_big(nginx)
            b.range_gets(nginx)
            b.concurrent_pulls(nginx)
        if "manifests" in only:
            b.manifest_puts()
            b.wrk_rows()
            b.htpasswd_row({"wharf": [a.wharf, "serve"], a.name: [a.distribution, "serve"]})
            b.tag_lists()
        if "catalog" in only:
            b.catalog()

        ceil = ceilings(a, work, files[a.get_size])
        nginx_wrk = []
        if nginx:
            rps, p99 = run_wrk(f"http://{nginx.host}/ready", a.wrk_seconds, 64)
            nginx_wrk.append(("nginx, small static file, wrk 64 connections", rps, "req/s"))
            nginx_wrk.append(("  nginx p99 latency", p99, "ms"))
        for s in servers.values():
            s.stop()
        out = table(b, servers, ceil, nginx_wrk)
        for note in sorted(set(b.notes)):
            out += f"\n\nNote: {note}."
        print(out)
        if a.out:
            with open(a.out, "w") as f:
                f.write(out + "\n")
    finally:
        for s in list(servers.values()) + ([nginx] if nginx else []):
            s.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        sys.exit(f"bench: FAILED: {e}")
