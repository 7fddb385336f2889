"""10. /healthz under a load balancer's probes: its cost per call.

gunicorn with ONE sync worker on loopback, PostgreSQL and Redis as in production; a load
generator in this process (8 threads, ``http.client``, a new connection per request) asks for a
fixed time for ``/healthz`` (``SELECT 1`` and a Redis ``PING``: project/health.py) and for a
static file (``/static/favicon.svg``, served by WhiteNoise from memory: the cheapest answer the
same process gives). They alternate twice so background load on the host hits both alike. The
figures are requests per second; one worker's time per probe is 1 / that.
"""

from __future__ import annotations

from bench import common
from bench.common import Row, log

PATHS = {"healthz": "/healthz", "static": "/static/favicon.svg"}


def run(sandbox: common.Sandbox, quick: bool = False) -> tuple[list[Row], dict]:
    seconds = 3.0 if quick else 10.0
    server, base = common.start_gunicorn(workers=1)
    try:
        for path in PATHS.values():  # warm up: the worker's first connections, WhiteNoise's file list
            common.http_load(base, path, 1.0)
        totals = {name: [0, 0] for name in PATHS}
        for _ in range(2):
            for name, path in PATHS.items():
                ok, bad = common.http_load(base, path, seconds / 2)
                totals[name][0] += ok
                totals[name][1] += bad
    finally:
        server.stop()
    rps = {name: ok / seconds for name, (ok, _) in totals.items()}
    errors = {name: bad for name, (_, bad) in totals.items()}
    log(f"healthz: {rps}, errors {errors}")
    ratio = rps["healthz"] / rps["static"] if rps["static"] else 0.0
    per_probe_ms = 1000 / rps["healthz"] if rps["healthz"] else float("inf")
    details = {"rps": rps, "errors": errors, "ratio": ratio, "seconds": seconds, "ms_per_probe": per_probe_ms}
    return [
        Row("healthz", "/healthz req/s (SELECT 1 + Redis PING), gunicorn -w 1 sync",
            f"{rps['healthz']:.0f}/s (≤ {per_probe_ms:.1f} ms of the worker each)", f"{rps['static']:.0f}/s static file",
            f"{ratio:.2f}", "≥ 0.50 (1 probe/s is < 1% of a worker)", ratio >= 0.5 and not any(errors.values())),
    ], details
