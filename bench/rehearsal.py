"""``make rehearsal``: Kiln on several hosts, rehearsed on one machine (issue 18).

Two "hosts", each one web process (gunicorn), one worker group (a poll worker, queues
``default,poll``; a download worker, queues ``download,webhooks``, threads) and a beat
(``manage.py runbeat``: the one holding the installation's beat lock in PostgreSQL ticks, the
other waits as a standby). Every process is started from the ``ExecStart`` line of its unit in
docs/deploy/systemd/ (the install path ``/srv/kiln`` becomes this checkout, the state
directory ``/var/lib/kiln`` the process's own directory, the port a free one, celery's ``%h``
the host's name), with its own working directory, ``KILN_VAR_DIR``, ``MEDIA_ROOT`` and
``TMPDIR`` under var/rehearsal/<host>/<process>/. What they share is what several hosts
share: the settings of one env file (var/rehearsal/env, the units' /etc/kiln/env):
PostgreSQL, Redis (broker and cache), SECRET_KEY, FIELD_ENCRYPTION_KEYS, and the bucket on
a real S3 API server on loopback (tests/s3.py: moto, its own process).

Then ``--jobs`` sandbox jobs are created through the JSON API with personal access tokens,
by several members of ``--teams`` teams, alternately on both web processes (a request that
meets a dead web process is sent again to the other one with the same ``Idempotency-Key``,
as a load balancer would). While they run, each kind of process is SIGKILLed (its whole
process group, at once) at a random moment and started again a moment later: each web
process while jobs are being created, each poll worker while jobs are polled, each download
worker while results are stored, the ticking beat twice. ``--seed`` repeats a run's moments.

Figures, measured from outside Kiln where they can be: jobs created, lost (not succeeded)
and sent to the provider twice (the sandbox counts submissions); polls of one job that
overlapped in time (the sandbox's request log: each poll's arrival and answer, with a poll
latency so that overlaps would show); beats holding the beat lock at once (asked of
PostgreSQL every second) and how soon the standby ticked after a kill; every Media row's file
and thumbnail in the bucket with the row's sha256; files under the processes' own
directories; captures per succeeded job and ``manage.py credits verify``; the gallery, every result page, and every file and
thumbnail fetched from both web processes. One table; exit status 1 if a target is missed.
Details: var/rehearsal/results.json; each process's log: var/rehearsal/logs/.
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench import common
from bench.common import PY, ROOT, Row, log
from tests.s3 import MotoServer

UNITS = ROOT / "docs" / "deploy" / "systemd"
INSTALL = "/srv/kiln"            # the units' install path ...
STATE = "/var/lib/kiln"          # ... and state directory
UNIT_BIND = "127.0.0.1:8000"     # kiln-web.service's address
HOSTS = ("host1", "host2")
KINDS = ("web", "worker-poll", "worker-download", "beat")
UNIT_OF = {"web": "kiln-web", "worker-poll": "kiln-worker-poll", "worker-download": "kiln-worker-download",
           "beat": "kiln-beat"}
# What each says once it is up (runbeat: that it holds the beat lock, or that it waits as a standby).
READY = {"web": "Kiln web worker ready", "worker-poll": " ready.", "worker-download": " ready.",
         "beat": "runbeat: "}
# Leases the engine reads from the environment, shortened so a killed worker's jobs come back
# within the run (the poll and download leases are constants: generations/engine/poll.py, download.py).
SHORTENED = {"KILN_SUBMIT_LEASE_SECONDS": "60"}
IMAGE = ("shark:openai/gpt-image-2", "text-to-image")
VIDEO = ("shark:alibaba/wan-2.7", "text-to-video")
POLL_PATH = re.compile(r"^/shark/api/v1/(?:images/generations|videos)/([^/]+)$")
CREDITS = 10**9


# ---------------------------------------------------------------------------
# The units, as systemd would run them


@dataclass(frozen=True)
class Unit:
    """What the rehearsal takes from a unit's [Service] section (the rest is systemd's business)."""

    name: str
    exec_start: str
    working_directory: str
    environment: dict[str, str]
    private_tmp: bool


def read_unit(name: str) -> Unit:
    """The [Service] section's ExecStart, WorkingDirectory and Environment of docs/deploy/systemd/<name>.service."""
    section, service, env = "", {}, {}
    for raw in (UNITS / f"{name}.service").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        key, _, value = line.partition("=")
        if section != "[Service]":
            continue
        if key == "Environment":
            env.update(item.split("=", 1) for item in shlex.split(value))
        else:
            service[key] = value
    return Unit(name, service["ExecStart"], service["WorkingDirectory"], env,
                service.get("PrivateTmp", "no").lower() in ("yes", "true", "1", "on"))


def read_env_file(path: Path) -> dict[str, str]:
    """An EnvironmentFile: KEY=VALUE lines, # comments, values optionally quoted."""
    env = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            env[key.strip()] = shlex.split(value)[0] if value.strip() else ""
    return env


def on_host(text: str, host: str, state: Path, port: int | None = None) -> str:
    """``text`` of a unit as it is on ``host``: this checkout for the install (its venv's
    programs), ``state`` for the state directory, ``port`` for the web's, ``host`` for celery's
    ``%h`` (both "hosts" are this machine, whose one name would give two nodes the same)."""
    text = text.replace(f"{INSTALL}/.venv/bin/", f"{Path(PY).parent}/").replace(INSTALL, str(ROOT))
    text = text.replace(STATE, str(state))
    if port is not None:
        text = text.replace(UNIT_BIND, f"127.0.0.1:{port}")
    return text.replace("%h", host)


def unit_argv(unit: Unit, host: str, state: Path, port: int | None = None) -> list[str]:
    """The unit's ExecStart split as systemd splits it (``%%`` is a literal ``%``)."""
    return [on_host(word, host, state, port) for word in shlex.split(unit.exec_start.replace("%%", "%"))]


@dataclass
class Process:
    """One unit on one host: started from its unit, killed and started again."""

    host: str
    kind: str
    shared_env: dict[str, str]
    port: int | None = None
    child: common.Child | None = None
    starts: list[float] = field(default_factory=list)
    kills: list[float] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.host}-{self.kind}"

    @property
    def state(self) -> Path:
        return common.VAR / self.host / self.kind

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> None:
        unit = read_unit(UNIT_OF[self.kind])
        if unit.private_tmp:   # systemd gives each start a fresh /tmp and removes it when the unit stops
            shutil.rmtree(self.state / "tmp", ignore_errors=True)
        for sub in ("media", "tmp"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        # systemd: EnvironmentFile= overrides Environment=. MEDIA_ROOT and TMPDIR (PrivateTmp's
        # /tmp): where a file written to the local disk would land (the checks look there afterwards).
        # PGAPPNAME: its PostgreSQL sessions carry its name (which beat holds the lock, seen from outside).
        env = {**{k: on_host(v, self.host, self.state) for k, v in unit.environment.items()}, **self.shared_env,
               "MEDIA_ROOT": str(self.state / "media"), "TMPDIR": str(self.state / "tmp"), "PGAPPNAME": self.name}
        log_offset = self.log_size()
        self.child = common.Child(self.name, unit_argv(unit, self.host, self.state, self.port), env,
                                  cwd=Path(on_host(unit.working_directory, self.host, self.state)))
        self.starts.append(time.time())
        if wait:
            self.wait_ready(log_offset)

    def log_size(self) -> int:
        path = common.VAR / "logs" / f"{self.name}.log"
        return path.stat().st_size if path.exists() else 0

    def wait_ready(self, offset: int, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.child.alive():
                raise RuntimeError(f"{self.name} exited with status {self.child.process.returncode}; "
                                   f"see {self.child.log_path}")
            with open(self.child.log_path, "rb") as fh:
                fh.seek(offset)
                if READY[self.kind].encode() in fh.read():
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} was not ready within {timeout:g} s; see {self.child.log_path}")

    def kill_and_restart(self, rng: random.Random) -> None:
        self.kills.append(time.time())
        log(f"SIGKILL {self.name}")
        self.child.kill()
        time.sleep(rng.uniform(0.5, 3.0))     # systemd's RestartSec, roughly
        self.start()
        log(f"{self.name} started again")

    def stop(self) -> None:
        if self.child:
            self.child.stop()


# ---------------------------------------------------------------------------
# The installation


def shared_environment(s3_env: dict[str, str]) -> dict[str, str]:
    """What every process of every host gets from /etc/kiln/env."""
    base = common.environment()
    env = {key: base[key] for key in ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "FIELD_ENCRYPTION_KEYS",
                                      "KILN_ALLOW_PRIVATE_URLS", "DEBUG", "KILN_MANIFEST_STATIC")}
    env.update({
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "LOG_LEVEL": "INFO",
        # The broker's Redis db holds the cache's keys too: the rehearsal has one db of its own.
        "KILN_CACHE_URL": common.REDIS_URL,
        # Collected once at install, like the code: part of the release, not of a host's state.
        "STATIC_ROOT": str(common.VAR / "static"),
        # 1,000 jobs from a few members in a minute or two: the per-member limit (30 a minute) is lifted.
        "KILN_GENERATE_PER_MINUTE": "100000",
        **SHORTENED,
        **s3_env,
    })
    return env


def write_env_file(env: dict[str, str]) -> Path:
    path = common.VAR / "env"
    path.write_text("# /etc/kiln/env of the rehearsal (bench/rehearsal.py)\n"
                    + "".join(f"{key}={shlex.quote(value)}\n" for key, value in sorted(env.items())))
    return path


def make_people(teams: int, members: int, sandbox: common.Sandbox):
    """Teams of members with credits, a sandbox key each, and per member a token and a session."""
    from accounts.tokens.services import create_token

    people = []
    for t in range(teams):
        team, memberships = common.make_team(f"rehearsal-{t}", members, credits=CREDITS)
        common.make_key(team, sandbox)
        for membership in memberships:
            _, token = create_token(membership, "rehearsal", ["read", "generate"])
            people.append({"team": team.slug, "user": membership.user, "token": token,
                           "session": common.session_cookie(membership.user)})
    return people


# ---------------------------------------------------------------------------
# Jobs through the API


@dataclass
class Submissions:
    created: dict[int, str] = field(default_factory=dict)      # job number -> generation id
    by_port: Counter = field(default_factory=Counter)          # where each was answered 201
    resent: int = 0                                            # requests sent again (dead web, 5xx, 429)
    replayed: int = 0                                          # answered "Idempotent-Replayed"
    refused: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def count(self) -> int:
        return len(self.created)


def job_request(n: int, video_share: float) -> dict:
    """Job ``n``: mostly images (each a different format in turn), every so often a short video."""
    if (n * video_share) % 1 + video_share >= 1:   # evenly spread: one in 1/video_share
        model, operation = VIDEO
        params = {"duration": 5, "resolution": "480p"}
    else:
        model, operation = IMAGE
        params = {"output_format": ("png", "jpeg", "webp")[n % 3], "quality": "low"}
    return {"model": model, "operation": operation, "prompt": f"rehearsal job {n}: a kiln at dawn", "params": params}


def submit_all(webs: list[Process], people: list[dict], jobs: int, clients: int, video_share: float,
               out: Submissions) -> None:
    run = uuid.uuid4().hex[:8]

    def one(n: int) -> None:
        person = people[n % len(people)]
        headers = {"Authorization": f"Bearer {person['token']}", "Idempotency-Key": f"rehearsal-{run}-{n}"}
        body = job_request(n, video_share)
        turn = n % len(webs)
        for _attempt in range(60):
            web = webs[turn]
            try:
                response = httpx.post(f"{web.url}/api/v1/generations", json=body, headers=headers, timeout=60)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code == 201:
                with out.lock:
                    out.created[n] = response.json()["id"]
                    out.by_port[web.host] += 1
                    out.replayed += response.headers.get("Idempotent-Replayed") == "true"
                return
            if response is not None and response.status_code < 500 and response.status_code != 429:
                with out.lock:
                    out.refused.append((n, response.status_code, response.text[:300]))
                return
            # A dead or failing web process, or a limit: the load balancer's next backend, a moment later.
            with out.lock:
                out.resent += 1
            turn = (turn + 1) % len(webs)
            retry_after = response.headers.get("Retry-After") if response is not None else None
            time.sleep(float(retry_after) if retry_after and retry_after.isdigit() else 0.5)
        with out.lock:
            out.refused.append((n, 0, "gave up after 60 attempts"))

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(jobs)))


# ---------------------------------------------------------------------------
# Kills


@dataclass
class Kill:
    """A SIGKILL of ``pick()``'s process once ``when()`` is true (``pick``: the beat that ticks then)."""

    kind: str
    pick: Callable[[], Process | None]
    when: Callable[[], bool]
    process: Process | None = None
    at: float | None = None


def plan_kills(processes: dict[str, Process], rng: random.Random, jobs: int, state: dict) -> list[Kill]:
    """Each process killed at a random moment of its busy time (``state``: the run's progress).

    Web processes while jobs are created. Poll workers while jobs are polled, once every job has
    its provider job id: a poll worker killed between a submit's send and the save of the job id
    leaves that job expired for review, by design (generations/engine/submit.py: it is never
    sent twice), which is not what this run measures. Download workers while results are stored.
    The beat that ticks, twice (the second time, the one that took over).
    """
    def windows(low: float, high: float) -> list[tuple[str, float]]:
        """A random moment in each host's half of [low, high], the hosts in random order (so the
        two processes of a kind are never down at once)."""
        half = (high - low) / len(HOSTS)
        return [(host, rng.uniform(low + i * half, low + (i + 1) * half))
                for i, host in enumerate(rng.sample(HOSTS, len(HOSTS)))]

    def the(name: str) -> Callable[[], Process]:
        return lambda: processes[name]

    kills = []
    for host, fraction in windows(0.1, 0.9):
        kills.append(Kill("web", the(f"{host}-web"), lambda f=fraction: state["created"] >= f * jobs))
    for host, delay in windows(1.0, 15.0):
        kills.append(Kill("worker-poll", the(f"{host}-worker-poll"), lambda d=delay: state["all_sent_at"] is not None
                          and time.time() >= state["all_sent_at"] + d))
    for host, fraction in windows(0.1, 0.7):
        kills.append(Kill("worker-download", the(f"{host}-worker-download"),
                          lambda f=fraction: state["succeeded"] >= f * jobs))
    for _, fraction in windows(0.05, 0.8):
        kills.append(Kill("beat", lambda: processes.get(state["beat_holder"] or ""),
                          lambda f=fraction: state["succeeded"] >= f * jobs))
    return kills


def beat_holders() -> list[str]:
    """The processes (their PGAPPNAME) whose session holds the beat lock, asked of PostgreSQL."""
    import psycopg

    from project.runtime.beatlock import LOCK_KEY

    with psycopg.connect(host=common.PG_HOST, port=common.PG_PORT, user="postgres", dbname=common.DB_NAME,
                         autocommit=True) as conn:
        return [row[0] for row in conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s AND l.objsubid = 1",
            (LOCK_KEY >> 32, LOCK_KEY & 0xFFFFFFFF))]


def takeovers(kills: list[Kill], samples: list[tuple[float, list[str]]]) -> list[float | None]:
    """Per kill of the ticking beat: seconds until a beat held the lock again (None: never seen)."""
    found = []
    for kill in (k for k in kills if k.kind == "beat" and k.at is not None):
        restarted = min((t for t in kill.process.starts if t > kill.at), default=float("inf"))
        back = next((t for t, holders in samples if t > kill.at and holders
                     and (holders != [kill.process.name] or t > restarted)), None)
        found.append(None if back is None else round(back - kill.at, 1))
    return found


# ---------------------------------------------------------------------------
# Checks


def poll_overlaps(requests: list[dict], job_ids: set[str]) -> tuple[int, int, int]:
    """(polls, jobs with two polls at once, pairs of polls at once) from the sandbox's request log."""
    polls = defaultdict(list)
    for entry in requests:
        match = POLL_PATH.match(entry["path"])
        if entry["method"] == "GET" and match and match.group(1) in job_ids:
            polls[match.group(1)].append((entry["started"], entry["time"]))
    jobs_overlapping = pairs = 0
    for intervals in polls.values():
        intervals.sort()
        found = 0
        for i, (started, _) in enumerate(intervals):
            found += sum(1 for _, ended in intervals[:i] if ended > started)
        jobs_overlapping += found > 0
        pairs += found
    return sum(len(v) for v in polls.values()), jobs_overlapping, pairs


def bucket_check(s3, bucket: str, prefix: str, media: list) -> dict:
    """Each Media row's file and thumbnail in the bucket, the file's sha256 the row's."""
    keys = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.update(obj["Key"] for obj in page.get("Contents", []))

    def key(name: str) -> str:
        return f"{prefix}/{name}" if prefix else name

    def sha(name: str) -> str:
        return hashlib.sha256(s3.get_object(Bucket=bucket, Key=key(name))["Body"].read()).hexdigest()

    missing, wrong, thumbs = [], [], {}
    with ThreadPoolExecutor(8) as pool:
        files = dict(zip([m.pk for m in media], pool.map(
            lambda m: sha(m.file.name) if key(m.file.name) in keys else None, media), strict=True))
        with_thumb = [m for m in media if m.thumbnail]
        thumbs = dict(zip([m.pk for m in with_thumb], pool.map(
            lambda m: sha(m.thumbnail.name) if key(m.thumbnail.name) in keys else None, with_thumb), strict=True))
    for m in media:
        if files[m.pk] is None or (m.thumbnail and thumbs[m.pk] is None):
            missing.append(str(m.public_id))
        elif files[m.pk] != m.sha256:
            wrong.append(str(m.public_id))
    referenced = {key(m.file.name) for m in media} | {key(m.thumbnail.name) for m in media if m.thumbnail}
    return {"objects": len(keys), "missing": missing, "sha_wrong": wrong, "thumb_sha": thumbs,
            "no_thumbnail": sum(1 for m in media if not m.thumbnail),
            "unreferenced": sorted(keys - referenced)}


def own_files(processes: list[Process]) -> dict[str, list[str]]:
    """Files under the processes' own directories, by what they are."""
    found = defaultdict(list)
    for process in processes:
        for path in sorted(process.state.rglob("*")):
            if not path.is_file():
                continue
            rel = str(path.relative_to(common.VAR))
            part = path.relative_to(process.state).parts[0]
            if process.kind == "beat" and path.name.startswith("celerybeat-schedule"):
                found["beat schedule"].append(rel)
            elif part == "tmp":
                found["temporary"].append(rel)
            else:
                found["media or other"].append(rel)
    return dict(found)


def web_check(webs: list[Process], people: list[dict], generations: list, media: list, thumb_sha: dict) -> dict:
    """The gallery (each member, each web process), every result page (alternately on each), and
    every file and thumbnail from both, compared with the bucket's sha256."""
    from django.conf import settings

    sessions = {p["user"].pk: p["session"] for p in people}
    clients = {w.host: httpx.Client(base_url=w.url, timeout=60) for w in webs}
    failures: list[str] = []
    counts = Counter()

    seconds = defaultdict(list)

    def get(web: Process, path: str, user_id: int) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = clients[web.host].get(path, cookies={settings.SESSION_COOKIE_NAME: sessions[user_id]})
        except httpx.TransportError as exc:
            failures.append(f"{web.host} {path}: {exc!r}")
            return None
        seconds[re.sub(r"[0-9a-f-]{36}", "<id>", path)].append(time.perf_counter() - started)
        counts[web.host] += 1
        if response.status_code != 200:
            failures.append(f"{web.host} {path}: HTTP {response.status_code}")
            return None
        return response

    def gallery(args) -> None:
        web, person = args
        response = get(web, "/gallery/", person["user"].pk)
        if response is not None and "/g/" not in response.text:
            failures.append(f"{web.host} /gallery/ of {person['user'].email}: no result in it")

    def page(args) -> None:
        n, generation = args
        web = webs[n % len(webs)]
        response = get(web, f"/g/{generation.public_id}/", generation.author_id)
        if response is not None:
            for m in generation.media.all():
                if str(m.public_id) not in response.text:
                    failures.append(f"{web.host} /g/{generation.public_id}/: media {m.public_id} not on the page")

    def files(args) -> None:
        web, m = args
        author = m.generation.author_id
        got = get(web, f"/m/{m.public_id}/download/", author)
        if got is not None and hashlib.sha256(got.content).hexdigest() != m.sha256:
            failures.append(f"{web.host} /m/{m.public_id}/download/: sha256 differs")
        if m.thumbnail:
            got = get(web, f"/m/{m.public_id}/thumb/", author)
            if got is not None and hashlib.sha256(got.content).hexdigest() != thumb_sha.get(m.pk):
                failures.append(f"{web.host} /m/{m.public_id}/thumb/: sha256 differs")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(gallery, [(w, p) for w in webs for p in people]))
        list(pool.map(page, enumerate(generations)))
        list(pool.map(files, [(w, m) for w in webs for m in media]))
    for client in clients.values():
        client.close()
    return {"requests": dict(counts), "failures": failures,
            "median_seconds": {path: round(common.median(times), 3) for path, times in seconds.items()}}


# ---------------------------------------------------------------------------


def measure(args, run: dict, processes: dict[str, Process], people: list[dict], sandbox: common.Sandbox,
            moto: MotoServer, s3_env: dict[str, str], prefix: str, env_file: Path,
            phases: Phases) -> tuple[list[Row], dict]:
    """The figures of the run, each against its target; ``figures``: the numbers (results.json)."""
    from accounts.credits.models import LedgerEntry, LedgerKind
    from generations.models import Media, Status

    ours, submissions, kills = run["ours"], run["submissions"], run["kills"]
    statuses = dict(Counter(ours.values_list("status", flat=True)))
    succeeded = set(ours.filter(status=Status.SUCCEEDED).values_list("public_id", flat=True))
    job_ids = set(ours.values_list("provider_job_id", flat=True)) - {""}
    jobs = sandbox.http.get("/_control/jobs").raise_for_status().json()
    requests = sandbox.http.get("/_control/requests").raise_for_status().json()["requests"]
    polls, overlapping_jobs, overlapping = poll_overlaps(requests, job_ids)
    media = list(Media.objects.filter(generation__in=ours).select_related("generation"))
    phases.done("sandbox's log read")
    bucket = bucket_check(moto.client(), s3_env["KILN_S3_BUCKET"], prefix, media)
    phases.done("bucket checked")
    files = own_files(list(processes.values()))
    captures = Counter(LedgerEntry.objects.filter(kind=LedgerKind.CAPTURE, generation_ref__in=ours.values(
        "public_id")).values_list("generation_ref", flat=True))
    verify = subprocess.run([PY, "manage.py", "credits", "verify"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, **read_env_file(env_file)})
    generations = list(ours.prefetch_related("media").order_by("pk"))
    webs = [processes[f"{host}-web"] for host in HOSTS]
    web = web_check(webs, people, generations, media, bucket["thumb_sha"])
    phases.done("web processes checked")
    cpu = {p.name: round(p.child.cpu_seconds(), 1) for p in processes.values() if p.child and p.child.alive()}

    n = args.jobs
    killed = [k for k in kills if k.at is not None]
    samples = run["beat_samples"]
    took_over = takeovers(kills, samples)
    figures = {
        "processes": len(processes), "alive": len(cpu), "cpu_seconds_since_last_start": cpu,
        "kills_planned": len(kills), "kills": [(k.process.name, round(k.at - run["started"], 1)) for k in killed],
        "killed_kinds": sorted({k.kind for k in killed}),
        "beat_samples": len(samples), "beat_holders_at_once": max((len(h) for _, h in samples), default=0),
        "beat_samples_without_holder": sum(1 for _, h in samples if not h),
        "beat_holders_seen": sorted({name for _, h in samples for name in h}), "beat_takeover_seconds": took_over,
        "created": len(set(submissions.created.values())), "refused": submissions.refused[:20],
        "created_by_host": dict(submissions.by_port), "resent": submissions.resent,
        "replayed": submissions.replayed, "rows": ours.count(), "statuses": statuses,
        "lost": n - len(succeeded),
        "not_succeeded": list(ours.exclude(status=Status.SUCCEEDED).values("public_id", "status", "error")[:20]),
        "sent_twice": len(jobs["duplicates"]),   # every job's prompt is its own
        "polls": polls, "polls_counted": sum(j["polls"] for j in jobs["jobs"] if j["id"] in job_ids),
        "overlapping_polls": overlapping, "jobs_with_overlapping_polls": overlapping_jobs,
        "media": len(media), "media_missing": len(bucket["missing"]), "media_sha_wrong": len(bucket["sha_wrong"]),
        "media_without_thumbnail": bucket["no_thumbnail"], "bucket_objects": bucket["objects"],
        "bucket_unreferenced": bucket["unreferenced"][:50],
        "own_files": {kind: len(paths) for kind, paths in files.items()}, "own_file_paths": files,
        "captured_twice": sum(1 for c in captures.values() if c > 1), "uncaptured": len(succeeded - set(captures)),
        "captured_not_succeeded": len(set(captures) - succeeded),
        "credits_verify_exit": verify.returncode, "credits_verify_output": (verify.stdout + verify.stderr)[-2000:],
        "web_requests": web["requests"], "web_median_seconds": web["median_seconds"],
        "web_failures": len(web["failures"]),
        "web_failure_lines": web["failures"][:50],
    }
    f = figures
    other_files, temporary = f["own_files"].get("media or other", 0), f["own_files"].get("temporary", 0)
    rows = [
        Row("rehearsal", "processes (2 hosts: web, poll worker, download worker, beat), up at the end",
            f"{f['alive']} of {f['processes']}", target=str(f["processes"]), met=f["alive"] == f["processes"]),
        Row("rehearsal", "processes SIGKILLed at a random moment and started again",
            f"{len(killed)} of {len(kills)} (" + ", ".join(f"{kind} x{c}" for kind, c in Counter(
                k.kind for k in killed).items()) + ")", target="each kind" if kills else "—",
            met=(len(killed) == len(kills) and set(f["killed_kinds"]) == set(KINDS)) if kills else None),
        Row("rehearsal", "beats ticking at once (beat lock holders, asked of PostgreSQL every second)",
            f"max {f['beat_holders_at_once']} of 2 ({f['beat_samples']} samples; ticked: "
            f"{', '.join(f['beat_holders_seen']) or 'none'})", target="1",
            met=f["beat_holders_at_once"] == 1 and f["beat_samples"] > 0),
        Row("rehearsal", "  seconds until the standby ticked, after each SIGKILL of the ticking beat",
            ", ".join("never" if t is None else f"{t:g}" for t in took_over) or "—",
            target="each" if took_over else "—", met=(None not in took_over) if took_over else None),
        Row("rehearsal", "jobs created through the API (201) / refused", f"{f['created']} / {len(submissions.refused)}",
            target=f"{n} / 0", met=f["created"] == n and not submissions.refused),
        Row("rehearsal", "  answered by host1 / host2; requests sent again; idempotent replays",
            f"{f['created_by_host'].get('host1', 0)} / {f['created_by_host'].get('host2', 0)}; {f['resent']}; "
            f"{f['replayed']}"),
        Row("rehearsal", "generation rows (one per Idempotency-Key)", str(f["rows"]), target=str(n),
            met=f["rows"] == n),
        Row("rehearsal", "jobs lost (not succeeded)", f"{f['lost']}  {statuses}", target="0", met=f["lost"] == 0),
        Row("rehearsal", "jobs sent to the provider twice", str(f["sent_twice"]), target="0",
            met=f["sent_twice"] == 0),
        Row("rehearsal", f"overlapping polls of one job (sandbox's log; a poll takes {args.poll_latency:g} s)",
            f"{overlapping} (in {overlapping_jobs} jobs; {polls} polls)", target="0", met=overlapping == 0),
        Row("rehearsal", "  polls in the sandbox's log / counted by the sandbox", f"{polls} / {f['polls_counted']}",
            target="equal", met=polls == f["polls_counted"] and polls > 0),
        Row("rehearsal", "media rows whose file and thumbnail are in the bucket, sha256 the row's",
            f"{f['media'] - f['media_missing'] - f['media_sha_wrong']} of {f['media']}",
            target=f"all, ≥ {len(succeeded)}", met=f["media_missing"] == f["media_sha_wrong"] == 0
            and f["media"] >= len(succeeded) > 0),
        Row("rehearsal", "  objects in the bucket / not any row's", f"{f['bucket_objects']} / "
            f"{len(bucket['unreferenced'])}"),
        Row("rehearsal", "files under the processes' own directories: media or other / temporary",
            f"{other_files} / {temporary}", target="0 / 0", met=other_files == temporary == 0),
        Row("rehearsal", "succeeded jobs captured once / twice / never",
            f"{len(succeeded) - f['uncaptured'] - f['captured_twice']} / {f['captured_twice']} / {f['uncaptured']}",
            target=f"{len(succeeded)} / 0 / 0", met=f["captured_twice"] == f["uncaptured"] == 0),
        Row("rehearsal", "captures of jobs that did not succeed", str(f["captured_not_succeeded"]), target="0",
            met=f["captured_not_succeeded"] == 0),
        Row("rehearsal", "manage.py credits verify", "ok" if verify.returncode == 0 else f"exit {verify.returncode}",
            target="ok", met=verify.returncode == 0),
        Row("rehearsal", "gallery, result pages, files and thumbnails (sha256) from both web processes",
            f"{sum(web['requests'].values())} requests (" + ", ".join(
                f"{h} {c}" for h, c in sorted(web["requests"].items())) + f"), {f['web_failures']} failed",
            target="0 failed", met=f["web_failures"] == 0 and all(web["requests"].get(h) for h in HOSTS)),
    ]
    return rows, figures


class Phases:
    """Seconds each phase of the rehearsal took (logged, and in results.json)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._started = time.monotonic()

    def done(self, name: str) -> None:
        now = time.monotonic()
        self.seconds[name] = round(now - self._started, 1)
        self._started = now
        log(f"{name}: {self.seconds[name]:.0f} s")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/rehearsal.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--teams", type=int, default=2)
    parser.add_argument("--members", type=int, default=3, help="per team")
    parser.add_argument("--clients", type=int, default=8, help="API requests in flight at once")
    parser.add_argument("--durations", default="5,40", help="sandbox job durations, seconds: low,high")
    parser.add_argument("--video-share", type=float, default=0.1, help="share of the jobs that are videos")
    parser.add_argument("--poll-latency", type=float, default=0.2, help="seconds each poll takes at the sandbox")
    parser.add_argument("--no-kills", action="store_true", help="kill nothing (to compare)")
    parser.add_argument("--seed", type=int, default=None, help="the kill moments of an earlier run")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for every job to end")
    parser.add_argument("--db", default=os.environ.get("KILN_REHEARSAL_DB", "kiln_rehearsal"),
                        help="PostgreSQL database, dropped and made again (default $KILN_REHEARSAL_DB or "
                             "kiln_rehearsal)")
    parser.add_argument("--redis", default=os.environ.get("KILN_REHEARSAL_REDIS", "redis://127.0.0.1:6379/10"),
                        help="Redis database URL, flushed: the broker and the cache (default "
                             "$KILN_REHEARSAL_REDIS or redis://127.0.0.1:6379/10)")
    parser.add_argument("--var", type=Path, default=ROOT / "var" / "rehearsal",
                        help="the hosts' directories, logs and results.json (default var/rehearsal)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    args.low, args.high = (float(x) for x in args.durations.split(","))
    if args.seed is None:
        args.seed = random.randrange(1_000_000)
    return args


def run_jobs(args, processes: dict[str, Process], people: list[dict], rng: random.Random) -> dict:
    """Create the jobs through the API while killing processes; wait until every job has ended."""
    from django.db.models import Count

    from generations.models import TERMINAL, Generation, Status

    webs = [processes[f"{host}-web"] for host in HOSTS]
    state = {"created": 0, "succeeded": 0, "all_sent_at": None, "beat_holder": None}
    samples: list[tuple[float, list[str]]] = []
    kills = [] if args.no_kills else plan_kills(processes, rng, args.jobs, state)
    killers: list[threading.Thread] = []
    submissions = Submissions()
    submitter = threading.Thread(target=submit_all, args=(webs, people, args.jobs, args.clients, args.video_share,
                                                          submissions), name="submit")
    started = time.time()
    submitter.start()
    ours = Generation.objects.filter(team__slug__startswith="rehearsal-")
    deadline = time.monotonic() + args.timeout
    last_log = 0.0
    counts: dict = {}
    while time.monotonic() < deadline:
        state["created"] = submissions.count
        counts = dict(ours.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
        state["succeeded"] = counts.get(Status.SUCCEEDED, 0)
        if state["all_sent_at"] is None and not submitter.is_alive() and not counts.get(Status.QUEUED):
            state["all_sent_at"] = time.time()
            log(f"every job created ({submissions.count}) and sent to the provider")
        holders = beat_holders()
        samples.append((time.time(), holders))
        state["beat_holder"] = holders[0] if len(holders) == 1 else None
        for kill in kills:
            if kill.at is None and kill.when() and (process := kill.pick()) is not None:
                kill.process, kill.at = process, time.time()
                killer = threading.Thread(target=process.kill_and_restart, args=(random.Random(rng.random()),))
                killer.start()
                killers.append(killer)
        terminal = sum(n for s, n in counts.items() if s in TERMINAL)
        if time.monotonic() - last_log > 15:
            last_log = time.monotonic()
            log(f"{submissions.count} created, {terminal} ended {counts}")
        if (not submitter.is_alive() and terminal >= submissions.count and all(k.at for k in kills)
                and not any(t.is_alive() for t in killers)):
            break
        time.sleep(1)
    submitter.join()
    for killer in killers:
        killer.join()
    return {"submissions": submissions, "kills": kills, "started": started, "seconds": time.time() - started,
            "sent_at": state["all_sent_at"], "ours": ours, "beat_samples": samples}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    common.VAR, common.DB_NAME, common.REDIS_URL = args.var, args.db, args.redis
    for stale in (*HOSTS, "logs"):
        shutil.rmtree(common.VAR / stale, ignore_errors=True)
    common.install_signal_handlers()
    phases = Phases()
    log(f"rehearsal: seed {args.seed}; database {args.db}, redis {args.redis}; logs in {common.VAR / 'logs'}")

    moto = MotoServer().start()
    atexit.register(moto.stop)
    bucket, prefix = moto.make_bucket(), "rehearsal"
    s3_env = moto.env(bucket, prefix)
    os.environ.update({**s3_env, "KILN_CACHE_URL": args.redis})
    common.create_database()
    common.setup_django()
    common.migrate()
    common.flush_redis()
    env_file = write_env_file(shared_environment(s3_env))
    shared_env = read_env_file(env_file)

    sandbox = common.Sandbox(duration=args.high)
    sandbox.control(duration_range=[args.low, args.high], poll_latency=args.poll_latency, request_log=10**6,
                    media_ttl=3600)
    people = make_people(args.teams, args.members, sandbox)

    processes: dict[str, Process] = {}
    for host in HOSTS:
        for kind in KINDS:   # the beat too: runbeat on both hosts, one ticks
            process = Process(host, kind, shared_env, port=common.free_port() if kind == "web" else None)
            processes[process.name] = process
    for process in processes.values():
        process.start(wait=False)
    for process in processes.values():
        process.wait_ready(0)
    webs = [processes[f"{host}-web"] for host in HOSTS]
    phases.done(f"set up ({', '.join(processes)}; web on {', '.join(w.url for w in webs)})")

    run = run_jobs(args, processes, people, rng)
    phases.done("jobs created, run and ended")
    rows, figures = measure(args, run, processes, people, sandbox, moto, s3_env, prefix, env_file, phases)

    stoppers = [threading.Thread(target=p.stop) for p in processes.values()]   # as systemd stops units: together
    for stopper in stoppers:
        stopper.start()
    for stopper in stoppers:
        stopper.join()
    sandbox.stop()
    moto.stop()
    if not args.keep:
        common.drop_database()
    common.flush_redis()
    phases.done("stopped")
    rows.append(Row("rehearsal", "minutes: whole rehearsal / jobs' run",
                    f"{sum(phases.seconds.values()) / 60:.1f} / {run['seconds'] / 60:.1f}"))

    details = {"seed": args.seed, "jobs": args.jobs, "teams": args.teams, "members": args.members,
               "durations": [args.low, args.high], "poll_latency": args.poll_latency, "shortened": SHORTENED,
               "phases": phases.seconds, "figures": figures,
               "argv": {p.name: unit_argv(read_unit(UNIT_OF[p.kind]), p.host, p.state, p.port)
                        for p in processes.values()}}
    common.VAR.mkdir(parents=True, exist_ok=True)
    results = common.VAR / "results.json"
    results.write_text(json.dumps({"rows": [r.as_dict() for r in rows], "details": details}, indent=2,
                                  default=str))
    print()
    print(f"Kiln several-hosts rehearsal: {args.jobs:,} jobs, seed {args.seed} (details: {results})")
    common.print_table(rows)
    return 0 if all(r.met for r in rows if r.met is not None) else 1


if __name__ == "__main__":
    sys.exit(main())
