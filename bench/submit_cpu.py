"""CPU per studio POST, by part, in one process: ``python bench/submit_cpu.py [N]``.

Not a row of ``make bench``: a profile to read next to the burst's CPU figures
(docs/performance.md, "The studio POST under a burst"). It makes its own PostgreSQL
database (``KILN_BENCH_DB``, default ``kiln_bench_submit``) and uses Redis
(``KILN_BENCH_REDIS``, default db 13) as the broker, signs one member in, and sends N
htmx submits through Django's test client (the provider is never called: no worker
runs). Each part's CPU time (``time.process_time``) is summed around the function
that does it; parts nest (``_create_within_limit`` holds ``create_generation``).
"""

from __future__ import annotations

import collections
import functools
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("KILN_BENCH_DB", "kiln_bench_submit")
os.environ.setdefault("KILN_BENCH_REDIS", "redis://127.0.0.1:6379/13")

from bench import common  # after the environment: it reads KILN_BENCH_DB on import


def main(count: int) -> None:
    common.create_database()
    common.setup_django()
    common.migrate()
    common.flush_redis()
    try:
        _profile(count)
    finally:
        common.drop_database()
        common.flush_redis()


def _profile(count: int) -> None:
    from celery.app.task import Task
    from django.test import Client
    from django.test.client import ClientHandler

    from accounts.credits import services as credits
    from bench.burst import MODEL, _StudioForm, prompt_for
    from generations import services
    from generations.studio import forms as studio_forms
    from generations.studio import views
    from generations.studio.forms import model_value

    class _NoSandbox:
        def base_url(self, provider_id: str) -> str:
            return f"http://127.0.0.1:9/{provider_id}"

    team, (member,) = common.make_team("submitcpu")
    common.make_key(team, _NoSandbox())
    credits.grant(credits.wallet_for(member), 10**9, reason="bench")
    client = Client(REMOTE_ADDR="127.0.0.1")
    client.cookies["sessionid"] = common.session_cookie(member.user)
    value = model_value("shark", MODEL)
    form = _StudioForm()
    form.feed(client.get("/", {"model": value}).content.decode())
    fields = {**form.fields, "model": value}

    spent: collections.Counter[str] = collections.Counter()

    def timed(owner, name: str, label: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            t0 = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] += time.process_time() - t0

        setattr(owner, name, wrapper)

    parts = [
        (ClientHandler, "__call__", "the request (middleware and view)"),
        (views, "_catalog", "team catalog"),
        (views, "StudioForm", "StudioForm() built"),
        (studio_forms.StudioForm, "full_clean", "form validated"),
        (views, "_create_within_limit", "create transaction (lock, rate count, create, commit)"),
        (services, "create_generation", "  create_generation"),
        (credits, "reserve", "    credits.reserve"),
        (Task, "delay", "  submit_generation.delay (on commit)"),
        (views, "_created_response", "the answer (fresh form, card, balance)"),
        (views, "render", "  template rendering"),
    ]
    for owner, name, label in parts:
        timed(owner, name, label)

    def post(i: int):
        return client.post("/studio/generate/", {**fields, "prompt": prompt_for(i),
                                                 "idempotency_key": uuid.uuid4().hex}, HTTP_HX_REQUEST="true")

    for i in range(20):
        assert post(i).status_code == 200
    spent.clear()
    t0 = time.process_time()
    for i in range(count):
        post(100 + i)
    total = time.process_time() - t0
    print(f"{count} studio POSTs: {1000 * total / count:.2f} ms CPU each (load {os.getloadavg()[0]:.1f})")
    for _, _, label in parts:
        print(f"  {label:55s} {1000 * spent[label] / count:6.2f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
