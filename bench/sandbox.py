"""8. The provider sandbox's server: one poll's latency, on a quiet and on a busy host.

The sandbox answers every request of ``make run`` and of the tests. Werkzeug's server closes
each connection after one answer, so a request is a connection; its ``ThreadedWSGIServer``
then starts a thread for it, and ``Thread.start()`` waits until that thread has run: on a busy
host, a wait for the scheduler in front of every request. Kiln's server
(``generations.sandbox.server._ReusedThreadsServer``) keeps the thread for the next connection.

Both serve the same sandbox application (every provider mounted) in a child process of
their own (``python -m bench.sandbox --serve threaded|reused PORT``), started alternately for
several rounds; in each round one client process polls one Shark job N times in a row through
httpx (``GET /shark/api/v1/videos/<id>`` with a key, as the engine does). The figures are
medians over the rounds: the client's wall time per request, and the server's CPU per request.
"Busy": the same with 2 busy-looping processes per core beside it. Baseline in the same run:
Werkzeug's ``ThreadedWSGIServer``, everything else equal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from bench import common
from bench.common import Row, log

SERVERS = ("threaded", "reused")


def serve(kind: str, port: int) -> None:
    """The child: the sandbox on ``kind`` of server until killed."""
    from werkzeug.serving import make_server

    from generations.sandbox import server as sandbox_server

    server = sandbox_server.SandboxServer("127.0.0.1", port, duration=3600)
    if kind == "threaded":
        server.httpd.server_close()
        server.httpd = make_server("127.0.0.1", port, server.sandbox, threaded=True,
                                   request_handler=sandbox_server._RequestHandler)
    print("ready", flush=True)
    server.serve_forever()


def poll(url: str, count: int) -> None:
    """The client: create a Shark job, then poll it ``count`` times; prints seconds per request."""
    import httpx

    with httpx.Client(base_url=url, headers={"Authorization": "Bearer sk-bench"}, timeout=30) as client:
        job = client.post("/shark/api/v1/videos", json={"model": "alibaba/wan-2.7", "prompt": "bench"}).json()
        path = f"/shark/api/v1/videos/{job['id']}"
        client.get(path).raise_for_status()
        started = time.perf_counter()
        for _ in range(count):
            client.get(path).raise_for_status()
        print(json.dumps({"seconds_per_request": (time.perf_counter() - started) / count}))


def _one_round(kind: str, count: int) -> tuple[float, float]:
    port = common.free_port()
    child = common.Child(f"sandbox-{kind}", [sys.executable, "-m", "bench.sandbox", "--serve", kind, str(port)])
    try:
        common.wait_http(f"http://127.0.0.1:{port}/")
        cpu_before = child.cpu_seconds()
        out = subprocess.run([sys.executable, "-m", "bench.sandbox", "--poll", f"http://127.0.0.1:{port}", str(count)],
                             cwd=common.ROOT, capture_output=True, text=True, check=True)
        cpu = child.cpu_seconds() - cpu_before
    finally:
        child.stop()
    return json.loads(out.stdout)["seconds_per_request"], cpu / (count + 2)


def _measure(rounds: int, count: int) -> dict[str, dict[str, float]]:
    seen: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in SERVERS}
    for _ in range(rounds):
        for kind in SERVERS:   # alternately, so a change in the host's load hits both alike
            wall, cpu = _one_round(kind, count)
            seen[kind]["wall"].append(wall)
            seen[kind]["cpu"].append(cpu)
    return {k: {"wall": common.median(v["wall"]), "cpu": common.median(v["cpu"])} for k, v in seen.items()}


def run(sandbox, quick: bool = False):
    rounds, count = (3, 200) if quick else (7, 500)
    results: dict = {}
    rows: list[Row] = []
    for host in ("quiet", "busy"):
        busy = []
        if host == "busy":
            busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 * (os.cpu_count() or 1))]
        try:
            log(f"sandbox: {rounds} rounds x {count} polls per server, {host} host")
            figures = _measure(rounds, count)
        finally:
            for process in busy:
                process.kill()
                process.wait()
        results[host] = figures
        ours, base = figures["reused"], figures["threaded"]
        ratio = ours["wall"] / base["wall"]
        rows.append(Row("sandbox", f"one poll, {host} host: wall", f"{ours['wall'] * 1e3:.2f} ms",
                        f"{base['wall'] * 1e3:.2f} ms", f"{ratio:.2f}", "≤ 1.0", ratio <= 1.0))
        rows.append(Row("sandbox", f"one poll, {host} host: server CPU", f"{ours['cpu'] * 1e3:.2f} ms",
                        f"{base['cpu'] * 1e3:.2f} ms", f"{ours['cpu'] / base['cpu']:.2f}"))
    return rows, {"rounds": rounds, "polls_per_round": count, **results}


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "--poll":
        poll(sys.argv[2], int(sys.argv[3]))
