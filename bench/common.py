"""What every benchmark needs: the bench database and Redis db, the child processes
(sandbox, gunicorn, Celery workers), a few HTTP helpers and the result rows.

Everything runs on 127.0.0.1. Every child is started in its own session and
stopped by its process id (SIGTERM to its group, SIGKILL after a grace period),
also when the run is interrupted.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench"
PY = sys.executable
DB_NAME = os.environ.get("KILN_BENCH_DB", "kiln_bench")
PG_HOST = "127.0.0.1"
PG_PORT = 5432
REDIS_URL = os.environ.get("KILN_BENCH_REDIS", "redis://127.0.0.1:6379/9")
CLK_TCK = os.sysconf("SC_CLK_TCK")
# ``bench/run.py --embedded``: what ``make run`` runs on (SQLite and the embedded broker under
# var/bench-embedded) instead of PostgreSQL and Redis.
EMBEDDED = False


def use_embedded() -> None:
    global EMBEDDED, VAR
    EMBEDDED, VAR = True, ROOT / "var" / "bench-embedded"


# ---------------------------------------------------------------------------
# Environment


def _persisted(name: str, make) -> str:
    path = VAR / name
    if not path.exists():
        VAR.mkdir(parents=True, exist_ok=True)
        path.write_text(make())
    return path.read_text().strip()


def environment() -> dict[str, str]:
    """The environment of every Kiln process of the run (this one included)."""
    from cryptography.fernet import Fernet

    return {
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": f"sqlite:///{VAR / 'kiln.sqlite3'}" if EMBEDDED else
                        f"postgres://postgres@{PG_HOST}:{PG_PORT}/{DB_NAME}",
        "CELERY_BROKER_URL": f"filesystem://{VAR / 'broker'}" if EMBEDDED else REDIS_URL,
        "KILN_VAR_DIR": str(VAR),
        "MEDIA_ROOT": str(VAR / "media"),
        "STATIC_ROOT": str(VAR / "static"),
        "SECRET_KEY": _persisted("secret_key", lambda: "bench-" + os.urandom(32).hex()),
        "FIELD_ENCRYPTION_KEYS": _persisted("fernet_key", lambda: Fernet.generate_key().decode()),
        "KILN_ALLOW_PRIVATE_URLS": "1",   # the sandbox is on loopback
        "KILN_MANIFEST_STATIC": "0",
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }


def setup_django() -> None:
    os.environ.update(environment())
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _admin_connection():
    import psycopg

    return psycopg.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname="postgres", autocommit=True)


def create_database() -> None:
    if EMBEDDED:  # a fresh SQLite file and an empty broker folder
        (VAR / "kiln.sqlite3").unlink(missing_ok=True)
        shutil.rmtree(VAR / "broker", ignore_errors=True)
        return
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def drop_database() -> None:
    from django.db import connections

    connections.close_all()
    if EMBEDDED:
        return
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    call_command("collectstatic", verbosity=0, interactive=False)


def flush_redis() -> None:
    if EMBEDDED:
        return
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


# ---------------------------------------------------------------------------
# Child processes

_children: list[Child] = []


class Child:
    """A process of the run, in its own session; its output goes to var/bench/logs/<name>.log
    (appended to: a process started again under the same name continues its log)."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None,
                 cwd: Path | None = None):
        self.name = name
        logs = VAR / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.log_path = logs / f"{name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(list(argv), cwd=cwd or ROOT, env={**os.environ, **environment(), **(env or {})},
                                        stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.process.pid
        _children.append(self)

    def alive(self) -> bool:
        return self.process.poll() is None

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of every live process in this child's session."""
        return sum(cpu for _, cpu in session_processes(self.pid))

    def kill(self) -> None:
        """SIGKILL to the whole process group at once (a crash: nothing is given time to tidy up)."""
        self.stop(grace=0)

    def stop(self, grace: float = 20.0) -> None:
        if self.alive() and grace > 0:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        # Stragglers of the group (prefork children) go too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self._log.close()
        if self in _children:
            _children.remove(self)


def stop_all() -> None:
    for child in reversed(list(_children)):
        child.stop(grace=10)


atexit.register(stop_all)


def _on_signal(signum, frame):
    stop_all()
    raise SystemExit(128 + signum)


def install_signal_handlers() -> None:
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)


def _stat(pid: str) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2:].split()   # fields from "state" on (comm may hold spaces)


def session_processes(sid: int) -> list[tuple[int, float]]:
    """(pid, cpu seconds) of the live processes whose session id is ``sid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat(entry)
        if fields and int(fields[3]) == sid:      # field 6 of stat: session
            found.append((int(entry), (int(fields[11]) + int(fields[12])) / CLK_TCK))
    return found


def process_cpu(pids: Iterable[int]) -> float:
    total = 0.0
    for pid in pids:
        fields = _stat(str(pid))
        if fields:
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


class BackendCpu:
    """CPU time spent by the PostgreSQL backends serving the bench database, sampled now and
    then (a backend that comes and goes between two samples is missed: a lower bound)."""

    def __init__(self):
        self.seen: dict[int, list[float]] = {}
        self.sample()

    def sample(self) -> None:
        with _admin_connection() as conn:
            pids = [r[0] for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (DB_NAME,)).fetchall()]
        for pid in pids:
            cpu = process_cpu([pid])
            self.seen.setdefault(pid, [cpu, cpu])[1] = cpu

    def total(self) -> float:
        return sum(last - first for first, last in self.seen.values())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_load(base: str, path: str, seconds: float, headers: dict[str, str] | None = None,
              threads: int = 8) -> tuple[int, int]:
    """(ok responses, other responses) of GET ``path`` from ``threads`` threads for ``seconds``,
    a new connection per request (gunicorn's sync workers close each one)."""
    host, port = urlsplit(base).hostname, urlsplit(base).port
    stop = time.monotonic() + seconds
    counts = [[0, 0] for _ in range(threads)]

    def worker(n: int) -> None:
        while time.monotonic() < stop:
            conn = http.client.HTTPConnection(host, port, timeout=10)
            try:
                conn.request("GET", path, headers=headers or {})
                response = conn.getresponse()
                response.read()
                counts[n][0 if response.status in (200, 286) else 1] += 1
            except OSError:
                counts[n][1] += 1
            finally:
                conn.close()

    running = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in running:
        t.start()
    for t in running:
        t.join(timeout=seconds + 30)
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2.0)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:g} s")


# ---------------------------------------------------------------------------
# The parts of Kiln


class Sandbox:
    def __init__(self, duration: float = 2.0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.child = Child("sandbox", [PY, "-m", "generations.sandbox", "--port", str(self.port),
                                       "--duration", str(duration), "--media-ttl", "3600"])
        wait_http(self.url + "/")
        self.http = httpx.Client(base_url=self.url, timeout=60.0)

    def control(self, **settings) -> dict:
        return self.http.post("/_control/settings", json=settings).raise_for_status().json()

    def reset(self) -> None:
        self.http.post("/_control/reset").raise_for_status()
        self.control(media_ttl=3600)

    def jobs(self) -> list[dict]:
        return self.http.get("/_control/jobs").raise_for_status().json()["jobs"]

    def base_url(self, provider_id: str) -> str:
        return f"{self.url}/{provider_id}"

    def stop(self) -> None:
        self.http.close()
        self.child.stop()


def start_gunicorn(workers: int = 2, threads: int = 1) -> tuple[Child, str]:
    """gunicorn on a free port; ``threads`` > 1: gthread workers, as ``make run`` (4) and
    docs/deploy.md run them."""
    port = free_port()
    child = Child("gunicorn", [PY, "-m", "gunicorn", "project.wsgi", "-c", str(ROOT / "project/runtime/gunicorn.conf.py"),
                               "-b", f"127.0.0.1:{port}",
                               "-w", str(workers), "--threads", str(threads), "--log-level", "warning"])
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/accounts/login/")
    return child, url


# The download queue's worker, as production runs it (docs/deploy.md): downloads are
# I/O, so one process with a pool of threads; CPU work inside is bounded per core.
DOWNLOAD_THREADS = 16


def start_worker(name: str, queues: str, concurrency: int, *, beat: bool = False, pool: str = "prefork",
                 env: dict[str, str] | None = None, nice: int = 0) -> Child:
    """A Celery worker; ``nice`` > 0 runs it at that lower CPU priority (``nice -n``)."""
    argv = ["nice", "-n", str(nice)] if nice else []
    argv += [PY, "-m", "celery", "-A", "project", "worker", "-Q", queues, "-c", str(concurrency), "-P", pool,
            "-n", f"{name}@bench", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING"]
    if beat:
        argv += ["-B", "-s", str(VAR / f"beat-{name}")]
    return Child(f"worker-{name}", argv, env)


def make_team(slug: str, members: int = 1, credits: int = 0):
    """A team with ``members`` members (the first is the owner), each with ``credits``."""
    from accounts.credits.services import grant, wallet_for
    from accounts.models import Membership, Role, Team, User

    team = Team.objects.create(slug=slug, name=f"Bench {slug}")
    memberships = []
    for i in range(members):
        user = User.objects.create_user(f"m{i}@{slug}.bench", "bench password 1234 xyz")
        membership = Membership.objects.create(team=team, user=user, role=Role.OWNER if i == 0 else Role.MEMBER)
        if credits:
            grant(wallet_for(membership), credits, reason="bench grant")
        else:
            wallet_for(membership)
        memberships.append(membership)
    return team, memberships


def make_key(team, sandbox: Sandbox, provider_id: str = "shark"):
    from generations.keys.models import ProviderKey

    key = ProviderKey(team=team, provider=provider_id, label=f"Bench {provider_id}",
                      base_url=sandbox.base_url(provider_id), is_active=True)
    key.set_api_key(f"sk-bench-{provider_id}-0000")
    key.save()
    return key


def session_cookie(user) -> str:
    """A signed-in session for ``user`` (as the login view would leave it), for HTTP clients.

    ``login()`` on a request from 127.0.0.1, not the test client's ``force_login``: its
    request has no REMOTE_ADDR, and axes' access log (an inet column) refuses that."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import login
    from django.http import HttpRequest

    request = HttpRequest()
    request.META["REMOTE_ADDR"] = "127.0.0.1"
    request.session = import_module(settings.SESSION_ENGINE).SessionStore()
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    request.session.save()
    return request.session.session_key


# ---------------------------------------------------------------------------
# Figures


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass
class Row:
    bench: str
    figure: str
    value: str
    baseline: str = "—"
    ratio: str = "—"
    target: str = "—"
    met: bool | None = None   # None: reported, no target

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def print_table(rows: Sequence[Row], out=None) -> None:
    out = out or sys.stdout
    head = ("benchmark", "figure", "Kiln", "baseline (same run)", "ratio", "target", "met")
    cells = [head] + [(r.bench, r.figure, r.value, r.baseline, r.ratio, r.target,
                       "—" if r.met is None else ("yes" if r.met else "NO")) for r in rows]
    widths = [max(len(str(c[i])) for c in cells) for i in range(len(head))]
    line = "+".join("-" * (w + 2) for w in widths)
    for n, c in enumerate(cells):
        print(" | ".join(str(v).ljust(w) for v, w in zip(c, widths, strict=True)), file=out)
        if n == 0:
            print(line, file=out)


def save_results(rows: Sequence[Row], extra: dict) -> Path:
    VAR.mkdir(parents=True, exist_ok=True)
    path = VAR / "results.json"
    path.write_text(json.dumps({"rows": [r.as_dict() for r in rows], "details": extra}, indent=2, default=str))
    return path


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
