"""4. Downloads: a 500 MB chunked video (no Content-Length) from the sandbox.

The sandbox's ``/media/big?bytes=N`` streams an MP4 header and N bytes of
padding with chunked transfer encoding. A child process (``python -m
bench.download --child URL``: Django set up, the pooled httpx client created,
then VmRSS read from /proc/self/status) fetches it with
``generations.providers.http.download`` — the function the download task uses —
into a temporary file, then reads VmHWM (its peak resident memory). The
figure is VmHWM after minus VmRSS before. ``curl -o /dev/null`` fetches the
same URL in the same run. Each runs twice, alternating; the best throughput of
each counts (the host is shared: the best run is the least disturbed one).

curl writes nothing, so for the throughput target the temporary file is on
tmpfs (/dev/shm): the figure is Kiln's code (HTTP, chunked decoding, size cap,
sha256, the write) rather than this VM's disk, whose write speed swings between
about 150 MB/s and 1.4 GB/s. One more Kiln run into var/bench/ (the disk) is
reported for information.

On S3 (``--child-s3``): the same download, then stored in a bucket of a real S3 API server
on loopback (moto, its own process) as the download task stores a result: the temporary
file, then ``storage.save``'s multipart upload (8 MiB parts, two in flight). The figures are
the RSS growth of that process over both steps (target: under 64 MB, the file-only growth of
the same run beside it) and the largest temporary file (the whole download: docs/deploy.md
says why).

Two more baselines, also alternating, say what the target asks of this host:
``curl -o FILE`` into tmpfs (curl storing the file, no checksum) and
``curl | tee FILE | sha256sum`` (curl doing Kiln's whole job in C).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

from bench import common
from bench.common import Row, log

MB = 1024 * 1024
TMPFS = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()


def _vm(name: str) -> int:
    for line in open("/proc/self/status"):   # noqa: SIM115 (read at once)
        if line.startswith(name + ":"):
            return int(line.split()[1]) * 1024
    return 0


def child(url: str, directory: str) -> None:
    common.setup_django()
    from django.conf import settings

    from generations.providers import http

    http.client()
    rss_before, hwm_before = _vm("VmRSS"), _vm("VmHWM")
    with tempfile.NamedTemporaryFile(dir=directory, prefix="kiln-bench-download-") as fh:
        started = time.perf_counter()
        got = http.download(url, fh, max_bytes=settings.KILN_MAX_VIDEO_BYTES)
        seconds = time.perf_counter() - started
    print(json.dumps({"bytes": got.bytes, "seconds": seconds, "rss_before": rss_before,
                      "hwm_before": hwm_before, "hwm_after": _vm("VmHWM"), "sha256": got.sha256}))


def child_s3(url: str, directory: str) -> None:
    """The same download, then into the bucket as ``engine.download`` stores a result on S3:
    the whole file in a temporary file (the decoders seek in it), then ``storage.save``'s
    multipart upload. The environment names the bucket (``MotoServer.env``)."""
    common.setup_django()
    from django.conf import settings
    from django.core.files.base import File
    from django.core.files.storage import default_storage

    from generations.providers import http

    http.client()
    default_storage.exists("bench/warm-up")  # the S3 client made (and its imports paid) before the figure
    rss_before, hwm_before = _vm("VmRSS"), _vm("VmHWM")
    with tempfile.NamedTemporaryFile(dir=directory, prefix="kiln-bench-download-") as fh:
        started = time.perf_counter()
        got = http.download(url, fh, max_bytes=settings.KILN_MAX_VIDEO_BYTES)
        fh.flush()
        largest_temp = os.path.getsize(fh.name)
        fh.seek(0)
        name = default_storage.save("bench/download.mp4", File(fh, name="download.mp4"))
        seconds = time.perf_counter() - started
    stored = default_storage.size(name)
    default_storage.delete(name)
    print(json.dumps({"bytes": got.bytes, "stored": stored, "seconds": seconds, "rss_before": rss_before,
                      "hwm_before": hwm_before, "hwm_after": _vm("VmHWM"), "largest_temp": largest_temp}))


def _kiln_s3(url: str) -> dict:
    """``child_s3`` against a real S3 API server on loopback (moto, its own process)."""
    sys.path.insert(0, str(common.ROOT))
    from tests.s3 import MotoServer

    with MotoServer() as server:
        env = {**os.environ, **common.environment(), **server.env(server.make_bucket(), "kiln")}
        env.pop("MEDIA_ROOT", None)
        out = subprocess.run([common.PY, "-m", "bench.download", "--child-s3", url, TMPFS], cwd=common.ROOT,
                             env=env, capture_output=True, text=True, timeout=900, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _kiln(url: str, directory: str = TMPFS) -> dict:
    out = subprocess.run([common.PY, "-m", "bench.download", "--child", url, directory], cwd=common.ROOT,
                         env={**os.environ, **common.environment()},
                         capture_output=True, text=True, timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _curl(url: str, output: str = "/dev/null") -> dict:
    out = subprocess.run(["curl", "-sS", "-o", output, "-w", "%{size_download} %{time_total}", url],
                         capture_output=True, text=True, timeout=600, check=True)
    size, seconds = out.stdout.split()
    return {"bytes": int(float(size)), "seconds": float(seconds)}


def _curl_to_file(url: str) -> dict:
    """curl storing the bytes in a tmpfs file, no checksum: what writing the file alone costs."""
    with tempfile.NamedTemporaryFile(dir=TMPFS, prefix="kiln-bench-curl-") as fh:
        return _curl(url, fh.name)


def _curl_same_work(url: str) -> dict:
    """curl doing what Kiln does: the bytes to a tmpfs file and through sha256
    (``curl | tee FILE | sha256sum``, all C, three processes on as many cores as they get)."""
    with tempfile.NamedTemporaryFile(dir=TMPFS, prefix="kiln-bench-curl-") as fh:
        started = time.perf_counter()
        curl = subprocess.Popen(["curl", "-sS", url], stdout=subprocess.PIPE)
        tee = subprocess.Popen(["tee", fh.name], stdin=curl.stdout, stdout=subprocess.PIPE)
        curl.stdout.close()  # tee holds the pipe now: curl sees EPIPE if tee dies
        digest = subprocess.run(["sha256sum"], stdin=tee.stdout, capture_output=True, text=True, timeout=600,
                                check=True).stdout.split()[0]
        tee.stdout.close()
        if curl.wait(timeout=60) or tee.wait(timeout=60):
            raise RuntimeError(f"curl | tee failed: {curl.returncode}, {tee.returncode}")
        seconds = time.perf_counter() - started
        size = os.path.getsize(fh.name)
    return {"bytes": size, "seconds": seconds, "sha256": digest}


def _sha256_mb_s(megabytes: int = 512) -> float:
    """sha256 alone over ``megabytes`` in memory: the ceiling of any download that stores a checksum."""
    block = os.urandom(8 * MB)
    digest = hashlib.sha256()
    started = time.perf_counter()
    for _ in range(megabytes // 8):
        digest.update(block)
    return megabytes / (time.perf_counter() - started)


def run(sandbox: common.Sandbox, quick: bool = False) -> tuple[list[Row], dict]:
    size = (100 if quick else 500) * MB
    url = sandbox.http.get("/_control/big-url", params={"bytes": size, "ttl": 3600}).raise_for_status().json()["url"]
    kiln, curl, same, to_file = [], [], [], []
    for _ in range(2):
        curl.append(_curl(url))
        kiln.append(_kiln(url))
        to_file.append(_curl_to_file(url))
        same.append(_curl_same_work(url))
        log(f"download: curl {curl[-1]}, kiln {kiln[-1]}, curl -o tmpfs file {to_file[-1]}, "
            f"curl | tee | sha256sum {same[-1]}")
    assert {r["sha256"] for r in [*kiln, *same]} == {kiln[0]["sha256"]}, "the two disagree on the bytes"
    disk = _kiln(url, str(common.VAR))
    log(f"download: kiln to disk {disk}")
    s3 = _kiln_s3(url)
    log(f"download: kiln into S3 (moto) {s3}")
    assert s3["stored"] == s3["bytes"] >= size, s3
    for got in [*kiln, *curl, *same, *to_file, disk]:
        assert got["bytes"] >= size, got
    best_kiln = max(kiln, key=lambda r: r["bytes"] / r["seconds"])
    best_curl = max(curl, key=lambda r: r["bytes"] / r["seconds"])
    best_same = max(same, key=lambda r: r["bytes"] / r["seconds"])
    best_file = max(to_file, key=lambda r: r["bytes"] / r["seconds"])
    sha_rate = max(_sha256_mb_s() for _ in range(2))
    kiln_rate = best_kiln["bytes"] / best_kiln["seconds"] / MB
    curl_rate = best_curl["bytes"] / best_curl["seconds"] / MB
    same_rate = best_same["bytes"] / best_same["seconds"] / MB
    file_rate = best_file["bytes"] / best_file["seconds"] / MB
    growth = max(r["hwm_after"] - r["rss_before"] for r in [*kiln, disk]) / MB
    disk_rate = disk["bytes"] / disk["seconds"] / MB
    ratio = kiln_rate / curl_rate
    s3_growth = (s3["hwm_after"] - s3["rss_before"]) / MB
    details = {"bytes": size, "kiln": kiln, "curl": curl, "kiln_mb_s": kiln_rate, "kiln_disk_mb_s": disk_rate, "disk": disk, "curl_mb_s": curl_rate,
               "curl_same_work": same, "curl_same_work_mb_s": same_rate,
               "curl_to_file": to_file, "curl_to_file_mb_s": file_rate, "sha256_alone_mb_s": sha_rate,
               "rss_growth_mb": growth, "rss_before_mb": kiln[0]["rss_before"] / MB,
               "s3": s3, "s3_rss_growth_mb": s3_growth}
    label = f"{size // MB} MB chunked"
    return [
        Row("download", f"peak RSS growth, {label}", f"{growth:.1f} MB",
            f"{details['rss_before_mb']:.0f} MB RSS before", "—", "≤ 64 MB", growth <= 64),
        Row("download", f"throughput, {label}", f"{kiln_rate:.0f} MB/s", f"{curl_rate:.0f} MB/s curl",
            f"{ratio:.2f}", "≥ 0.50", ratio >= 0.5),
        Row("download", f"throughput vs curl doing the same work, {label}", f"{kiln_rate:.0f} MB/s",
            f"{same_rate:.0f} MB/s curl | tee file | sha256sum", f"{kiln_rate / same_rate:.2f}"),
        Row("download", f"curl storing the file (tmpfs, no checksum), {label}", f"{file_rate:.0f} MB/s",
            f"{curl_rate:.0f} MB/s curl", f"{file_rate / curl_rate:.2f}"),
        Row("download", "sha256 alone on this CPU, in memory (the ceiling)", f"{sha_rate:.0f} MB/s",
            f"{curl_rate:.0f} MB/s curl", f"{sha_rate / curl_rate:.2f}"),
        Row("download", "throughput into var/bench (disk), one run", f"{disk_rate:.0f} MB/s"),
        Row("download", f"peak RSS growth, {label} into S3 (temp file, then multipart upload)",
            f"{s3_growth:.1f} MB", f"{growth:.1f} MB to a file only", "—", "≤ 64 MB", s3_growth <= 64),
        Row("download", f"largest temporary file, {label} into S3", f"{s3['largest_temp'] / MB:.0f} MB",
            f"{size // MB} MB download", f"{s3['largest_temp'] / size:.2f}",
            "the whole file (docs/deploy.md)"),
        Row("download", f"download + upload to S3 (moto on loopback), {label}, one run",
            f"{s3['bytes'] / s3['seconds'] / MB:.0f} MB/s"),
    ], details


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "--child-s3":
        child_s3(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: python -m bench.download --child URL DIR (run by bench/run.py download)")
