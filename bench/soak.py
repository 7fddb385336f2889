"""``make soak``: the embedded default (what ``make run`` starts) left up, used, and watched.

Starts Kiln exactly as ``make run`` does (migrate, collectstatic, ``manage.py demo``, then
``manage.py runkiln``: sandbox, gunicorn, a Celery worker with beat on the embedded broker,
a download worker) in a fresh ``var/soak`` on free ports. Then:

1. idles for the first fifth of the run (the beat ticks every second: the embedded broker
   used to kill the worker while idle);
2. submits ``--jobs`` jobs over the next two fifths through the studio form over HTTP, as
   ``--members`` signed-in members of the demo team (a Shark video and a Shark image in turn,
   every field as the studio's form gives it, within the per-member rate limit);
3. idles for the rest, then waits (at most 3 minutes) for every job to end.

Throughout, the sign-in page is fetched every 5 s (is the web up?), and runkiln's output is
read for crashes ("exited unexpectedly") and restarts. At the end it stops runkiln with
SIGTERM and prints one table: minutes run, crashes, restarts, web answers, jobs submitted /
terminal / lost, and ``manage.py credits verify``. Exit status 0 when the target holds: no
crash, no restart, no job lost, every wallet equal to its ledger, runkiln stopped cleanly.

``python bench/soak.py --minutes 30`` (the default; ``make soak``); ``.ci/run`` runs
``--minutes 1 --jobs 60 --members 10``.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.burst import _Http, _member_form  # noqa: E402 (after the path)
from bench.common import Row, free_port, print_table  # noqa: E402

PY = sys.executable
VAR = ROOT / "var" / "soak"
MODELS = (("shark", "alibaba/wan-2.7"), ("shark", "openai/gpt-image-2"))


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] soak: {message}", file=sys.stderr, flush=True)


def _environment(port: int, sandbox_port: int) -> dict[str, str]:
    env = {**os.environ, "KILN_VAR_DIR": str(VAR), "PORT": str(port),
           "KILN_SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}", "DJANGO_SETTINGS_MODULE": "project.settings"}
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "KILN_CACHE_URL", "MEDIA_ROOT", "STATIC_ROOT", "SECRET_KEY",
                 "FIELD_ENCRYPTION_KEYS", "KILN_ALLOW_PRIVATE_URLS"):
        env.pop(name, None)  # the embedded default, whatever this shell has
    return env


class Runkiln:
    """``manage.py runkiln`` in its own session; its output goes to var/soak/runkiln.log and is
    scanned for crashes and restarts as it comes."""

    def __init__(self, env: dict[str, str]):
        self.log_path = VAR / "runkiln.log"
        self.crashes: list[str] = []
        self.restarts = 0
        self.running = threading.Event()
        self.process = subprocess.Popen([PY, "manage.py", "runkiln"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, errors="replace",
                                        start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        with open(self.log_path, "a") as out:
            for line in self.process.stdout:
                out.write(line)
                out.flush()
                if "exited unexpectedly" in line:
                    self.crashes.append(line.strip())
                    log(line.strip())
                elif "| restarting " in line:
                    self.restarts += 1
                elif "Kiln is running" in line:
                    self.running.set()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.reader.join(timeout=10)
        return self.process.returncode


def _members(count: int):
    from accounts.credits.services import grant, wallet_for
    from accounts.models import Membership, Role, Team, User
    from bench.common import session_cookie

    team = Team.objects.get(slug="demo")
    cookies = []
    for i in range(count):
        user = User.objects.create_user(f"soak{i}@kiln.local", uuid.uuid4().hex, name=f"Soak Member {i}")
        membership = Membership.objects.create(team=team, user=user, role=Role.MEMBER)
        grant(wallet_for(membership), 2_000_000, reason="soak")
        cookies.append((user, session_cookie(user)))
    return team, cookies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/soak.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--members", type=int, default=20)
    args = parser.parse_args(argv)
    seconds = args.minutes * 60
    submit_window = seconds * 0.4
    per_member_minute = args.jobs / args.members / max(submit_window / 60, 1 / 60)
    if per_member_minute > 25:
        parser.error(f"{args.jobs} jobs from {args.members} members in {submit_window:.0f} s is "
                     f"{per_member_minute:.0f} a minute each; the studio allows 30: more members or minutes")

    shutil.rmtree(VAR, ignore_errors=True)
    VAR.mkdir(parents=True)
    port, sandbox_port = free_port(), free_port()
    env = _environment(port, sandbox_port)
    os.environ.update({k: env[k] for k in ("KILN_VAR_DIR", "KILN_SANDBOX_URL", "DJANGO_SETTINGS_MODULE")})
    manage = [PY, "manage.py"]
    log(f"setting up the embedded default in {VAR.relative_to(ROOT)} (as make run does)")
    for step in (["migrate", "--noinput", "-v0"], ["collectstatic", "--noinput", "-v0"], ["demo"]):
        subprocess.run([*manage, *step], cwd=ROOT, env=env, check=True, capture_output=True)

    import django

    django.setup()
    from generations.models import TERMINAL, Generation
    from generations.studio.forms import model_value

    team, members = _members(args.members)
    kiln = Runkiln(env)
    atexit.register(kiln.stop)  # Ctrl-C or a failure mid-soak: runkiln (its own session) stops too
    if not kiln.running.wait(180):
        kiln.stop()
        raise SystemExit(f"runkiln did not start; see {kiln.log_path}")
    started = time.monotonic()
    log(f"Kiln is up on port {port}; {args.minutes:g} minutes: idle, {args.jobs} jobs from "
        f"{args.members} members, idle")
    client = _Http(f"http://127.0.0.1:{port}")
    probes = {"sent": 0, "answered": 0}
    stop_probing = threading.Event()

    def probe():
        while not stop_probing.wait(5):
            probes["sent"] += 1
            try:
                status, _, _ = client.request("GET", "/accounts/login/", {})
                probes["answered"] += status == 200
            except OSError:
                pass

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()

    time.sleep(seconds * 0.2)
    forms = {}
    for user, cookie in members:
        for provider, model in MODELS:
            value = model_value(provider, model)
            cookies, fields = _member_form(client, user, value, session=cookie)
            forms[user.pk, model] = (cookies, fields)
    accepted, refused = 0, []
    log(f"submitting {args.jobs} jobs over {submit_window:.0f} s")
    for n in range(args.jobs):
        due = started + seconds * 0.2 + n * submit_window / args.jobs
        time.sleep(max(0.0, due - time.monotonic()))
        user, _ = members[n % len(members)]
        cookies, fields = forms[user.pk, MODELS[n % len(MODELS)][1]]
        body = urlencode({**fields, "prompt": f"soak {n}: a kiln at dawn", "idempotency_key": uuid.uuid4().hex})
        try:
            status, text, _ = client.request("POST", "/studio/generate/", cookies, body,
                                             {"HX-Request": "true", "Referer": f"http://127.0.0.1:{port}/"})
        except OSError as exc:
            status, text = 0, repr(exc)
        if status == 200:
            accepted += 1
        else:
            refused.append((status, text[:200]))
    log(f"{accepted} accepted, {len(refused)} not {refused[:3]}; idling")
    time.sleep(max(0.0, started + seconds - time.monotonic()))
    ours = Generation.objects.filter(team=team, author__email__startswith="soak")
    give_up = time.monotonic() + 180
    while ours.exclude(status__in=TERMINAL).exists() and time.monotonic() < give_up:
        time.sleep(2)
    minutes = (time.monotonic() - started) / 60
    stop_probing.set()
    crashes, restarts, alive = len(kiln.crashes), kiln.restarts, kiln.process.poll() is None
    status = kiln.stop()

    created = ours.count()
    terminal = ours.filter(status__in=TERMINAL).count()
    statuses = dict(sorted((s, ours.filter(status=s).count()) for s in set(ours.values_list("status", flat=True))))
    verify = subprocess.run([*manage, "credits", "verify"], cwd=ROOT, env=env, capture_output=True, text=True)
    lost = accepted - terminal + abs(created - accepted)
    rows = [
        Row("soak", "minutes run (embedded default, make run's processes)", f"{minutes:.1f}"),
        Row("soak", "crashes (a process exited unexpectedly)", str(crashes), target="0", met=crashes == 0),
        Row("soak", "restarts", str(restarts), target="0", met=restarts == 0),
        Row("soak", "runkiln up to the end, stopped by SIGTERM", f"{'yes' if alive else 'no'}, exit {status}",
            target="yes, exit 0", met=alive and status == 0),
        Row("soak", "web answered sign-in probes (every 5 s)", f"{probes['answered']} of {probes['sent']}",
            target="all", met=probes["answered"] == probes["sent"]),
        Row("soak", "jobs submitted (200) / refused", f"{accepted} / {len(refused)}", target=f"{args.jobs} / 0",
            met=accepted == args.jobs),
        Row("soak", "jobs terminal / lost", f"{terminal} / {lost}  {statuses}", target="all / 0",
            met=lost == 0 and terminal == accepted),
        Row("soak", "credits verify", "ok" if verify.returncode == 0 else "FAILED", target="ok",
            met=verify.returncode == 0),
    ]
    print()
    print(f"Kiln soak: {minutes:.1f} minutes; runkiln's output in {kiln.log_path.relative_to(ROOT)}")
    print_table(rows)
    for line in kiln.crashes:
        print("crash:", line)
    return 0 if all(r.met for r in rows if r.met is not None) else 1


if __name__ == "__main__":
    sys.exit(main())
