"""Webhook delivery lag: a job ends, its team's receiver gets the signed webhook.

With the workers idle (production's layout: a ``poll`` worker with the embedded beat, a
``download,default,webhooks`` worker of threads, as make run's downloads worker takes webhooks), ~30 Shark image
jobs are created one after another through the studio's service (``create_generation``) and run
through the sandbox by the real workers. A receiver on loopback (``http.server`` in this
process) answers 200 and notes when each delivery arrives.

Per job: lag = arrival at the receiver minus Kiln's ``finished_at`` (the job's move to succeeded,
in the transaction that writes its delivery: the outbox). Also reported: from the sandbox's
``completed_at`` (the job's end at the provider, so the poll and the download are included).

Target (issue 17, point 6): p95 under 2 s from the job's end with the worker idle. No baseline:
without webhooks a script polls (its lag is its own poll interval).
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench import common
from bench.common import Row, log, median, percentile

MODEL_ID = "openai/gpt-image-2"
TARGET_S = 2.0


class _Receiver:
    def __init__(self):
        self.arrivals: dict[str, float] = {}   # generation public id -> time.time()
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                import json

                at = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
                data = json.loads(body).get("data", {})
                with receiver.cond:
                    receiver.arrivals.setdefault(data.get("id", ""), at)
                    receiver.cond.notify_all()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, public_id: str, timeout: float) -> float | None:
        with self.cond:
            self.cond.wait_for(lambda: public_id in self.arrivals, timeout=timeout)
            return self.arrivals.get(public_id)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def run(sandbox: common.Sandbox, quick: bool = False) -> tuple[list[Row], dict]:
    from generations.models import Generation, Status
    from generations.services import create_generation
    from generations.team_webhooks.models import WebhookEndpoint, new_secret

    count = 10 if quick else 30
    team, (member,) = common.make_team("hooks", credits=100_000_000)
    common.make_key(team, sandbox)
    receiver = _Receiver()
    endpoint = WebhookEndpoint(team=team, url=receiver.url, events=["generation.succeeded", "generation.failed"])
    endpoint.set_secret(new_secret())
    endpoint.save()

    sandbox.reset()
    sandbox.control(duration=1.0)
    poller = common.start_worker("poll", "poll", 2, beat=True)
    worker = common.start_worker("download", "download,default,webhooks", common.DOWNLOAD_THREADS, pool="threads")
    time.sleep(8)   # workers and beat up

    lags, ends, missing = [], [], 0
    try:
        for n in range(count):
            generation = create_generation(membership=member, provider_id="shark", model_id=MODEL_ID,
                                           operation="text-to-image", prompt=f"a kiln at dawn, take {n}", params={})
            arrived = receiver.wait_for(str(generation.public_id), timeout=90)
            generation.refresh_from_db()
            if arrived is None or generation.status != Status.SUCCEEDED:
                missing += 1
                continue
            lags.append(arrived - generation.finished_at.timestamp())
            job = next((j for j in sandbox.jobs() if j["id"] == generation.provider_job_id), None)
            if job and job.get("completed_at"):
                ends.append(arrived - job["completed_at"])
            time.sleep(0.5)   # idle again before the next job
    finally:
        poller.stop()
        worker.stop()
        receiver.stop()
    log(f"webhook_lag: {len(lags)} of {count} delivered; p50 {median(lags):.2f} s, p95 {percentile(lags, 95):.2f} s")
    p95 = percentile(lags, 95)
    details = {"jobs": count, "delivered": len(lags), "missing": missing,
               "lag_p50": median(lags), "lag_p95": p95, "lag_max": max(lags, default=0),
               "from_provider_end_p50": median(ends), "from_provider_end_p95": percentile(ends, 95),
               "statuses": sorted(set(Generation.objects.filter(team=team).values_list("status", flat=True)))}
    rows = [
        Row("webhook_lag", f"p95 webhook lag from the job's end, {count} jobs, worker idle", f"{p95:.2f} s",
            "— (a script polls instead)", "—", f"< {TARGET_S:g} s", p95 < TARGET_S and missing == 0),
        Row("webhook_lag", "p50 webhook lag", f"{median(lags):.2f} s"),
        Row("webhook_lag", "p95 from the provider's end (poll and download included)",
            f"{percentile(ends, 95):.2f} s"),
    ]
    return rows, details
