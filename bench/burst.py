"""5. Submit burst: 500 studio submissions from 50 members within 10 s, against gunicorn (2 workers).

Each member is signed in (a session cookie) and opens the studio once over
HTTP, as a browser would: the bench reads the form it is given (model, every
parameter's default, the CSRF token) and then POSTs it to
``generations:generate`` with ``HX-Request`` and a fresh idempotency key per
submission. 32 client threads send the 500 POSTs on a fixed schedule (one
every 20 ms, members interleaved). Member i has credits for 5 + i % 5 of their
10 submissions, so each member's refusals are known in advance: a submission
is "right" when exactly that many are accepted (200, a card) and the rest are
refused (422, "This needs N credits and you have M available.").

Contention: the same 500 POSTs from ONE member (credits for 350 of them) on
the same schedule. The wallet's reservation is one conditional UPDATE of that
member's row, so 50 members should not wait on each other; one member's 500
do serialise on their one row.

The studio limits a member to 30 submissions a minute (429 beyond); the 50
members stay within it, and bench/settings.py lifts it so that ONE member can
send 500 for the comparison.

Drain: the production worker layout (poll worker with beat, download worker)
runs throughout; afterwards every accepted generation must reach a terminal
state (the sandbox finishes jobs in 2-6 s) with no loss, and
``accounts.credits.services.verify()`` must find every wallet equal to its ledger.

The JSON API's create: the same 500 submissions (the form's model, operation and parameters,
an ``Idempotency-Key`` each) from 50 other members with bearer tokens, on the same schedule,
once the studio's jobs have drained, so both start with the workers idle; the target is the
studio's POST within 1.2x (p95 and served rate).

What is sent is a ``Target``: how a member is prepared (the studio: open the form) and how
submission ``i`` becomes a request, and how an answer is judged (accepted, refused for
credits, or wrong). A second target (the JSON API's create with a bearer token) is one more
``Target`` with its own ``prepare``/``request``/``judge``; ``_burst`` and the figures stay.

Where the CPU goes: during the 50-member burst the bench samples the CPU time of every
process of the run (gunicorn, the sandbox, the workers, the PostgreSQL backends of the bench
database, this client) and of the whole machine, and reports milliseconds per POST of each.

The prompt of submission ``i`` ends with ``i`` ("a kite over the dunes at dusk, burst 17"):
each is a distinct prompt, while the sandbox, which draws the first six words of a prompt
into the video it serves, encodes ONE video and serves it from its cache. With the number
first ("burst 17: a kite ...") it encoded a new 1280x720 video per job (~0.25 s of CPU
each, four times what Kiln spends on the POST), so the benchmark measured the stand-in
provider's video encoder competing with the web server for the same two cores, which a real
provider does on its own machines (docs/performance.md, "The studio POST under a burst").
"""

from __future__ import annotations

import http.client
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urlencode, urlsplit

from bench import common
from bench.common import Row, log, percentile

MODEL = "alibaba/wan-2.7"
SPACING = 0.02   # seconds between two POSTs: 500 in 10 s
THREADS = 32
# The web server as ``make run`` and docs/deploy.md run it: 2 workers of 4 threads. With one
# thread (sync workers, what this benchmark ran before), a worker waiting on PostgreSQL's 20-odd
# round trips of a submit serves no one meanwhile; KILN_BENCH_WEB_THREADS=1 measures that.
WEB_THREADS = int(os.environ.get("KILN_BENCH_WEB_THREADS", "4"))
# KILN_BENCH_WORKER_NICE=10: the workers at a lower CPU priority than the web server (a burst
# waits in the queue instead of in the web server's run queue); 0, as production runs them now.
WORKER_NICE = int(os.environ.get("KILN_BENCH_WORKER_NICE", "0"))


class _StudioForm(HTMLParser):
    """The fields of <form id="studio-form"> as a browser would submit them (no files)."""

    def __init__(self):
        super().__init__()
        self.inside = False
        self.fields: dict[str, str] = {}
        self._select: str | None = None
        self._first_option: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == "studio-form":
            self.inside = True
        if not self.inside:
            return
        if tag == "input" and a.get("name") and a.get("type") not in ("file", "submit", "button"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.fields[a["name"]] = a.get("value", "on" if a.get("type") == "checkbox" else "")
        elif tag == "select" and a.get("name"):
            self._select, self._first_option = a["name"], None
        elif tag == "option" and self._select:
            if self._first_option is None:
                self._first_option = a.get("value", "")
                self.fields.setdefault(self._select, self._first_option)
            if "selected" in a:
                self.fields[self._select] = a.get("value", "")
        elif tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            self.fields[self._textarea] = ""

    def handle_data(self, data):
        if self._textarea:
            self.fields[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "form" and self.inside:
            self.inside = False


class _Http:
    def __init__(self, base: str):
        self.host, self.port = urlsplit(base).hostname, urlsplit(base).port

    def request(self, method: str, path: str, cookies: dict[str, str], body: str | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            send = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()), **(headers or {})}
            if body is not None:
                send["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request(method, path, body=body, headers=send)
            response = conn.getresponse()
            set_cookies = {}
            for name, value in response.getheaders():
                if name.lower() == "set-cookie":
                    key, _, rest = value.partition("=")
                    set_cookies[key] = rest.split(";", 1)[0]
            return response.status, response.read().decode("utf-8", "replace"), set_cookies
        finally:
            conn.close()


def _member_form(client: _Http, user, model_value: str, session: str | None = None
                 ) -> tuple[dict[str, str], dict[str, str]]:
    cookies = {"sessionid": session or common.session_cookie(user)}
    status, body, set_cookies = client.request("GET", "/?" + urlencode({"model": model_value}), cookies)
    assert status == 200, status
    cookies.update(set_cookies)
    parser = _StudioForm()
    parser.feed(body)
    fields = parser.fields
    assert "csrfmiddlewaretoken" in fields and "prompt" in fields, sorted(fields)
    fields["model"] = model_value
    return cookies, fields


def prompt_for(i: int) -> str:
    """Submission ``i``'s prompt: distinct per submission, the same first six words (see above)."""
    return f"a kite over the dunes at dusk, burst {i}"


@dataclass(frozen=True)
class Target:
    """What the burst sends: ``request(state, i)`` builds submission ``i`` for a member's
    ``state`` (what ``prepare`` made of them) as (method, path, headers, body);
    ``judge(status, text)`` says "accepted", "refused" (not enough credits) or "wrong"."""

    name: str
    prepare: Callable[[_Http, object], object]
    request: Callable[[object, int], tuple[str, str, dict[str, str], str]]
    judge: Callable[[int, str], str]


def _studio_target(value: str) -> Target:
    """The studio form's POST, as htmx sends it: the member's session cookie and CSRF token."""

    def prepare(client: _Http, user) -> tuple[dict, dict]:
        return _member_form(client, user, value)

    def request(state: tuple[dict, dict], i: int) -> tuple[str, str, dict[str, str], str]:
        cookies, fields = state
        body = urlencode({**fields, "prompt": prompt_for(i), "idempotency_key": uuid.uuid4().hex})
        headers = {"Cookie": _cookie_header(cookies), "HX-Request": "true", "Referer": "http://127.0.0.1/",
                   "Content-Type": "application/x-www-form-urlencoded"}
        return "POST", "/studio/generate/", headers, body

    def judge(status: int, text: str) -> str:
        if status == 200:
            return "accepted"
        return "refused" if status == 422 and "credits" in text else "wrong"

    return Target("studio", prepare, request, judge)


def _api_target(provider_id: str, model_id: str, operation: str, params: dict) -> Target:
    """The JSON API's create (``POST /api/v1/generations``): the member's bearer token and an
    ``Idempotency-Key`` per submission, the same model, operation and parameters as the form."""
    import json

    def prepare(client: _Http, membership) -> str:
        from accounts.tokens.services import create_token

        return create_token(membership, "burst", ["generate"])[1]

    def request(token: str, i: int) -> tuple[str, str, dict[str, str], str]:
        body = json.dumps({"model": f"{provider_id}:{model_id}", "operation": operation, "prompt": prompt_for(i),
                           "params": params})
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                   "Idempotency-Key": uuid.uuid4().hex}
        return "POST", "/api/v1/generations", headers, body

    def judge(status: int, text: str) -> str:
        if status == 201:
            return "accepted"
        return "refused" if status == 422 and "insufficient-credits" in text else "wrong"

    return Target("api", prepare, request, judge)


def _cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def _send(client: _Http, method: str, path: str, headers: dict[str, str], body: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection(client.host, client.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def _burst(client: _Http, target: Target, plan: list[object]) -> tuple[list[tuple[int, str, float]], float]:
    """Send submission i for member state ``plan[i]`` at its slot; returns (status, body, seconds)
    per submission and the span from the first slot to the last answer."""
    results: list[tuple[int, str, float] | None] = [None] * len(plan)
    start = time.monotonic() + 0.5

    def send(i: int) -> None:
        method, path, headers, body = target.request(plan[i], i)
        delay = start + i * SPACING - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t0 = time.monotonic()
        try:
            status, text = _send(client, method, path, headers, body)
        except OSError as exc:
            status, text = 0, repr(exc)
        results[i] = (status, text, time.monotonic() - t0)

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        list(pool.map(send, range(len(plan))))
    span = time.monotonic() - start
    return [r for r in results if r is not None], span


def _machine_cpu() -> float:
    """CPU seconds the whole machine spent (every process, anyone's), from /proc/stat."""
    fields = open("/proc/stat").readline().split()[1:]  # noqa: SIM115 (one line)
    busy = sum(int(v) for i, v in enumerate(fields) if i not in (3, 4))  # not idle, not iowait
    return busy / common.CLK_TCK


class CpuWatch:
    """CPU seconds of each named process group (and PostgreSQL's backends, this client and the
    machine) between ``start`` and ``stop``; the backends are sampled every 0.5 s."""

    def __init__(self, children: dict[str, common.Child]):
        self.children = children

    def start(self) -> None:
        self.before = {name: child.cpu_seconds() for name, child in self.children.items()}
        self.me, self.machine, self.load = sum(os.times()[:2]), _machine_cpu(), os.getloadavg()[0]
        self.backends = common.BackendCpu()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            self.backends.sample()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self.backends.sample()
        spent = {name: child.cpu_seconds() - self.before[name] for name, child in self.children.items()}
        spent["postgres backends"] = self.backends.total()
        spent["bench client"] = sum(os.times()[:2]) - self.me
        spent["machine"] = _machine_cpu() - self.machine
        spent["load_before"], spent["load_after"] = self.load, os.getloadavg()[0]
        return spent


def _check(target: Target, results, owners: list[int], allowed: dict[int, int]) -> dict:
    accepted: dict[int, int] = {}
    wrong = []
    for (status, text, _), owner in zip(results, owners, strict=True):
        verdict = target.judge(status, text)
        if verdict == "accepted":
            accepted[owner] = accepted.get(owner, 0) + 1
        elif verdict != "refused":
            wrong.append((status, text[:200]))
    mismatched = {m: (accepted.get(m, 0), n) for m, n in allowed.items() if accepted.get(m, 0) != n}
    return {"accepted": sum(accepted.values()), "refused": len(results) - sum(accepted.values()) - len(wrong),
            "unexpected": wrong[:5], "unexpected_count": len(wrong), "members_mismatched": mismatched}


def _form_request(fields: dict[str, str]) -> tuple[str, dict]:
    """The operation and the parameters the studio form sends, cleaned as the service cleans them."""
    from generations.providers.registry import get_provider

    model = get_provider("shark").get_model(MODEL)
    operation = fields.get("operation") or model.operations[0]
    params, errors = model.clean_params(operation, {p.name: fields[p.name] for p in model.params_for(operation)
                                                    if p.name in fields})
    assert not errors, errors
    return operation, params


def _cost(fields: dict[str, str]) -> int:
    from generations.services import estimate

    operation, params = _form_request(fields)
    return estimate("shark", MODEL, operation, params)


def _drain(teams, *, seconds: float) -> None:
    """Wait until the teams' accepted jobs have all ended (or ``seconds`` passed)."""
    from generations.models import TERMINAL, Generation

    give_up = time.monotonic() + seconds
    while time.monotonic() < give_up and Generation.objects.filter(team__in=teams).exclude(status__in=TERMINAL).exists():
        time.sleep(1)


def run(sandbox: common.Sandbox, quick: bool = False) -> tuple[list[Row], dict]:
    from accounts.credits import services as credits
    from generations.models import TERMINAL, Generation, Status
    from generations.studio.forms import model_value

    members, per_member = (10, 10) if quick else (50, 10)
    total = members * per_member
    solo_allowed = total * 7 // 10   # the same share as the members' (5-9 of 10: 7 on average)
    sandbox.control(duration_range=[2.0, 6.0])
    team, memberships = common.make_team("burst", members=members)
    common.make_key(team, sandbox)
    solo_team, (solo,) = common.make_team("burstsolo")
    common.make_key(solo_team, sandbox)
    api_team, api_memberships = common.make_team("burstapi", members=members)
    common.make_key(api_team, sandbox)

    server, base = common.start_gunicorn(2, threads=WEB_THREADS)
    poller = common.start_worker("poll", "poll", 2, beat=True, nice=WORKER_NICE)
    downloader = common.start_worker("download", "download,default,webhooks", common.DOWNLOAD_THREADS, pool="threads",
                                     nice=WORKER_NICE)
    client = _Http(base)
    target = _studio_target(model_value("shark", MODEL))
    watch = CpuWatch({"gunicorn": server, "sandbox": sandbox.child, "poll worker": poller,
                      "download worker": downloader})
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            states = list(pool.map(lambda m: target.prepare(client, m.user), memberships))
        solo_state = target.prepare(client, solo.user)
        # Credits for some of each member's submissions, priced from the form's own defaults.
        cost = _cost(states[0][1])
        allowed = {}
        for i, m in enumerate(memberships):
            allowed[i] = 5 + i % 5
            credits.grant(credits.wallet_for(m), allowed[i] * cost, reason="bench")
        credits.grant(credits.wallet_for(solo), solo_allowed * cost, reason="bench")
        # The API's members: the same credits, the same request as the form's.
        api_target = _api_target("shark", MODEL, *_form_request(states[0][1]))
        api_states = [api_target.prepare(client, m) for m in api_memberships]
        for i, m in enumerate(api_memberships):
            credits.grant(credits.wallet_for(m), allowed[i] * cost, reason="bench")
        plan = [states[i % members] for i in range(total)]
        owners = [i % members for i in range(total)]
        log(f"burst: {total} POSTs from {members} members (load {os.getloadavg()[0]:.1f})")
        watch.start()
        many, many_span = _burst(client, target, plan)
        cpu = watch.stop()
        # The API's burst starts as the studio's did: with the workers idle again.
        _drain([team], seconds=120)
        log(f"burst: {total} API creates from {members} members (load {os.getloadavg()[0]:.1f})")
        api_load = os.getloadavg()[0]
        api_watch = CpuWatch({"gunicorn": server})
        api_watch.start()
        api, api_span = _burst(client, api_target, [api_states[i % members] for i in range(total)])
        api_cpu = api_watch.stop()
        _drain([api_team], seconds=120)
        log(f"burst: {total} POSTs from one member (load {os.getloadavg()[0]:.1f})")
        one, one_span = _burst(client, target, [solo_state] * total)

        accepted_ids = list(Generation.objects.filter(team__in=[team, solo_team, api_team]).values_list("pk", flat=True))
        give_up = time.monotonic() + 240
        pending = len(accepted_ids)
        while time.monotonic() < give_up:
            pending = Generation.objects.filter(pk__in=accepted_ids).exclude(status__in=TERMINAL).count()
            if pending == 0:
                break
            time.sleep(2)
        drain = time.monotonic() - give_up + 240
    finally:
        poller.stop()
        downloader.stop()
        server.stop()

    many_check = _check(target, many, owners, allowed)
    one_check = _check(target, one, [0] * total, {0: solo_allowed})
    api_check = _check(api_target, api, owners, allowed)
    p50_api, p95_api = percentile([r[2] for r in api], 50), percentile([r[2] for r in api], 95)
    finals = dict.fromkeys(Status.values, 0)
    for status in Generation.objects.filter(pk__in=accepted_ids).values_list("status", flat=True):
        finals[status] += 1
    finals = {k: v for k, v in finals.items() if v}
    checks = credits.verify()
    ledger_ok = all(c.ok for c in checks)
    p95_many = percentile([r[2] for r in many], 95)
    p95_one = percentile([r[2] for r in one], 95)
    correct = (not many_check["members_mismatched"] and not many_check["unexpected_count"]
               and not one_check["members_mismatched"] and not one_check["unexpected_count"])
    api_correct = not api_check["members_mismatched"] and not api_check["unexpected_count"]
    lost = len(accepted_ids) - finals.get(Status.SUCCEEDED, 0)
    details = {"members": members, "per_member": per_member, "cost": cost, "many": many_check, "one": one_check,
               "span_many_s": many_span, "span_one_s": one_span, "p50_many": percentile([r[2] for r in many], 50),
               "p95_many": p95_many, "web_threads": WEB_THREADS, "worker_nice": WORKER_NICE, "p50_one": percentile([r[2] for r in one], 50), "p95_one": p95_one,
               "final_statuses": finals, "pending_after_drain": pending, "drain_s": drain, "ledger_ok": ledger_ok,
               "wallets": len(checks), "served_per_s_many": total / many_span,
               "cpu_ms_per_post_many": {k: round(1000 * v / total, 1) for k, v in cpu.items() if not k.startswith("load")},
               "load_many": [round(cpu["load_before"], 2), round(cpu["load_after"], 2)],
               "api": api_check, "span_api_s": api_span, "p50_api": p50_api, "p95_api": p95_api,
               "served_per_s_api": total / api_span, "load_api": round(api_load, 2),
               "gunicorn_cpu_ms_per_post_api": round(1000 * api_cpu["gunicorn"] / total, 1)}
    log(f"burst: {details}")
    p50_many = details["p50_many"]
    per_post = details["cpu_ms_per_post_many"]
    where = ", ".join(f"{k} {v:g}" for k, v in per_post.items() if k != "machine")
    return [
        Row("burst", f"served, 50 members ({1 / SPACING:.0f}/s offered; 2x{WEB_THREADS} threads; load {cpu['load_before']:.1f})",
            f"{total / many_span:.1f}/s, p50 {1000 * p50_many:.0f} ms, p95 {1000 * p95_many:.0f} ms", "—", "—",
            f"{1 / SPACING:.0f}/s, p95 < 500 ms", total / many_span >= 0.95 / SPACING and p95_many < 0.5),
        Row("burst", "CPU ms per POST during it (machine total)", f"{per_post['machine']:g} ms", where, "—", "—"),
        Row("burst", f"{total} POSTs / {members} members: accepted/refused right",
            f"{many_check['accepted']} ok + {many_check['refused']} refused in {many_span:.1f} s",
            f"1 member: {one_check['accepted']} + {one_check['refused']}", "—",
            "exactly the affordable ones", correct),
        Row("burst", "p95 response time, 50 members (vs 1 member)", f"{1000 * p95_many:.0f} ms",
            f"{1000 * p95_one:.0f} ms one member", f"{p95_many / p95_one:.2f}" if p95_one else "—",
            "≤ 1.1x one member's (no cross-member lock wait; 10 % for noise)", p95_many <= p95_one * 1.1),
        Row("burst", f"API creates, 50 members, the same schedule (load {api_load:.1f})",
            f"{total / api_span:.1f}/s, p50 {1000 * p50_api:.0f} ms, p95 {1000 * p95_api:.0f} ms",
            f"studio {total / many_span:.1f}/s, p95 {1000 * p95_many:.0f} ms",
            f"p95 {p95_api / p95_many:.2f}x, rate {(total / many_span) / (total / api_span):.2f}x" if p95_many else "—",
            "within 1.2x of the studio's POST (p95 and rate)",
            p95_api <= 1.2 * p95_many and total / api_span >= (total / many_span) / 1.2),
        Row("burst", "API: web CPU ms per create (studio's POST)",
            f"{details['gunicorn_cpu_ms_per_post_api']:g} ms", f"{per_post.get('gunicorn', 0):g} ms", "—", "—"),
        Row("burst", f"{total} API creates / {members} members: accepted/refused right",
            f"{api_check['accepted']} ok + {api_check['refused']} refused in {api_span:.1f} s", "—", "—",
            "exactly the affordable ones", api_correct),
        Row("burst", "queue drained: accepted jobs not succeeded", f"{lost} of {len(accepted_ids)}",
            f"drained in {drain:.0f} s", "—", "0, ledger verifies", lost == 0 and pending == 0 and ledger_ok),
    ], details
