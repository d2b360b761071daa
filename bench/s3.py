#!/usr/bin/env python3
"""Blob upload and download MiB/s on the S3 backend: wharf and CNCF distribution on one moto
server, each under its own root directory of one bucket, same workload, interleaved.

moto is an in-process Python S3 emulator, so the figures say how much each registry costs on
top of one S3 server, not what a real S3 region sustains. Both registries stream blob GETs
(`redirect.disable: true`), so the download passes through them. Run through
`bench/run.sh --s3 [--quick]`, which builds wharf first; needs `moto_server` (PATH,
$WHARF_MOTO_SERVER or target/venv-moto).
"""

import argparse
import http.client
import os
import shutil
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench import (  # noqa: E402
    MiB,
    BenchError,
    Client,
    Row,
    Server,
    check,
    fmt_size,
    free_port,
    put_blob,
    put_chunked,
    sha256_file,
)


def find_moto():
    env = os.environ.get("WHARF_MOTO_SERVER")
    if env:
        return env
    on_path = shutil.which("moto_server")
    if on_path:
        return on_path
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    local = os.path.join(target, "venv-moto", "bin", "moto_server")
    return local if os.path.exists(local) else None


def s3_config(endpoint, bucket, root, port):
    # The same keys for both; accesslog off and level warn so neither pays for request logging.
    return (
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
        "storage:\n  s3:\n    region: us-east-1\n"
        f"    regionendpoint: {endpoint}\n    bucket: {bucket}\n"
        "    accesskey: bench\n    secretkey: bench-secret\n    secure: false\n"
        f"    rootdirectory: {root}\n"
        "  redirect:\n    disable: true\n"
        "  maintenance:\n    uploadpurging:\n      enabled: false\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )


def start_registry(name, argv0, work, endpoint, bucket):
    home = os.path.join(work, name)
    os.makedirs(home)
    port = free_port()
    cfg = os.path.join(home, "config.yml")
    with open(cfg, "w") as f:
        f.write(s3_config(endpoint, bucket, f"/{name}", port))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "AWS_"))}
    env.setdefault("RUST_LOG", "warn")
    s = Server(name, argv0 + [cfg], port, env=env, log=os.path.join(home, "log.txt"))
    s.wait_ready()
    return s


def measure(servers, reps, row, fn):
    names = list(servers)
    for rep in range(reps):
        for name in names if rep % 2 == 0 else names[::-1]:
            s = servers[name]
            s.reset_hwm()
            c0 = s.cpu_seconds()
            value = fn(s)
            row.add(name, value, s.cpu_seconds() - c0, s.hwm_kib())
    figs = "  ".join(f"{n}={row.figure(n):.1f}" for n in names)
    print(f"  {row.task}: {figs} {row.unit}", file=sys.stderr, flush=True)
    return row


def fresh(path):
    """A new 16-byte head, so every upload is a new blob."""
    with open(path, "r+b") as f:
        f.write(os.urandom(16))
    return sha256_file(path)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes: proves the bench works")
    p.add_argument("--wharf", required=True, help="wharf binary (release build)")
    p.add_argument("--distribution", default="docker-registry")
    p.add_argument("--name", default="distribution")
    p.add_argument("--out", help="also write the markdown table here")
    p.add_argument("--reps", type=int)
    a = p.parse_args()
    up, chunked, get, reps = (
        ([8 * MiB], (16 * MiB, 5 * MiB), 16 * MiB, 1)
        if a.quick
        else ([64 * MiB], (128 * MiB, 8 * MiB), 128 * MiB, 3)
    )
    reps = a.reps or reps
    moto = find_moto()
    if not moto or not shutil.which(a.distribution):
        sys.exit(f"bench s3: moto_server or {a.distribution} not found")

    work = tempfile.mkdtemp(prefix="wharf-bench-s3-")
    procs = []
    try:
        port = free_port()
        s3 = Server("moto", [moto, "-H", "127.0.0.1", "-p", str(port)], port,
                    log=os.path.join(work, "moto.log"))
        procs.append(s3)
        s3.wait_ready(path="/")
        endpoint = f"http://127.0.0.1:{port}"
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        c = http.client.HTTPConnection("127.0.0.1", port)
        c.request("PUT", f"/{bucket}")
        r = c.getresponse()
        r.read()
        check(r.status == 200, f"create bucket: {r.status}")
        servers = {}
        servers["wharf"] = start_registry("wharf", [a.wharf, "serve"], work, endpoint, bucket)
        procs.append(servers["wharf"])
        servers[a.name] = start_registry(a.name, [a.distribution, "serve"], work, endpoint, bucket)
        procs.append(servers[a.name])

        files = {}
        for size in set(up + [chunked[0], get]):
            path = os.path.join(work, f"data-{size}")
            with open(path, "wb") as f:
                f.write(os.urandom(size))
            files[size] = path

        rows = []
        for size in up:
            def mono(s, size=size):
                digest = fresh(files[size])
                cl = Client(s.host)
                with open(files[size], "rb") as f:
                    t0 = time.perf_counter()
                    put_blob(cl, "s3/up", f, size, digest)
                    dt = time.perf_counter() - t0
                cl.close()
                return size / MiB / dt
            rows.append(measure(servers, reps, Row(f"S3 monolithic upload {fmt_size(size)}", "MiB/s"), mono))

        size, chunk = chunked

        def chunks(s):
            digest = fresh(files[size])
            cl = Client(s.host)
            t0 = time.perf_counter()
            put_chunked(cl, "s3/chunked", files[size], size, chunk, digest)
            dt = time.perf_counter() - t0
            cl.close()
            return size / MiB / dt
        rows.append(measure(servers, reps, Row(
            f"S3 chunked upload {fmt_size(size)} in {fmt_size(chunk)} PATCHes", "MiB/s"), chunks))

        big_digest = fresh(files[get])
        for s in servers.values():
            cl = Client(s.host)
            with open(files[get], "rb") as f:
                put_blob(cl, "s3/pull", f, get, big_digest)
            cl.close()

        def download(s):
            cl = Client(s.host)
            t0 = time.perf_counter()
            _, n, digest = cl.get_hashed(f"/v2/s3/pull/blobs/{big_digest}")
            dt = time.perf_counter() - t0
            cl.close()
            check(n == get and digest == big_digest, f"{s.name}: GET wrong blob")
            return n / MiB / dt
        rows.append(measure(servers, reps, Row(f"S3 blob GET {fmt_size(get)}", "MiB/s"), download))

        names = list(servers)
        lines = [f"| task | unit | {names[0]} | {names[1]} | {names[0]}/{names[1]} | "
                 f"{names[0]} CPU s | {names[1]} CPU s |", "|---|---|---|---|---|---|---|"]
        for row in rows:
            x, y = row.figure(names[0]), row.figure(names[1])
            lines.append(f"| {row.task} | {row.unit} | {x:.1f} | {y:.1f} | {x / y:.2f}x | "
                         f"{row.cpu[names[0]]:.2f} | {row.cpu[names[1]]:.2f} |")
        lines.append("")
        lines.append(f"Both on one moto server (bucket {bucket}, roots /wharf and /{a.name}); "
                     f"medians of {reps} repetition(s), CPU s summed over them.")
        out = "\n".join(lines)
        print(out)
        if a.out:
            with open(a.out, "w") as f:
                f.write(out + "\n")
    finally:
        for s in reversed(procs):
            s.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        sys.exit(f"bench s3: FAILED: {e}")
