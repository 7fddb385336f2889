"""``manage.py runkiln``: the whole of Kiln in one terminal, for ``make run``.

Starts the sandbox providers, the web server (gunicorn), a Celery worker with an
embedded beat (queues ``default`` and ``poll``) and a download worker (queue
``download``, a pool of threads), each line of their output prefixed with its name. Ctrl-C or
SIGTERM stops all of them and exits 0; one that dies is started again after a backoff, and only
one that keeps crashing stops everything (exit 1). See project.runtime.supervisor.
The web server listens on 127.0.0.1:$PORT (default 8000); the sandbox on the
port of KILN_SANDBOX_URL.
"""

import os
import signal
import socket
import sys
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from project.env import envint
from project.runtime.supervisor import Child, Supervisor


def kiln_children(port: int, sandbox_port: int) -> list[Child]:
    python = sys.executable
    return [
        Child("sandbox", [python, "-m", "generations.sandbox", "--port", str(sandbox_port)],
              ready="Kiln sandbox on"),
        Child("web", [python, "-m", "gunicorn", "project.wsgi", "-c", str(settings.BASE_DIR / "project/runtime/gunicorn.conf.py"),
                      "-b", f"127.0.0.1:{port}", "-w", "2",
                      "--threads", "4", "--graceful-timeout", "5"], ready="Kiln web worker ready"),
        Child("worker", [python, "-m", "celery", "-A", "project", "worker", "-B", "-Q", "default,poll",
                         "-c", "2", "-n", "poll@%h", "--loglevel", "INFO"],
              stop_signal=signal.SIGTERM, ready=" ready."),  # SIGTERM: Celery's warm shutdown
        # Downloads are I/O (waiting on a CDN): one process, a pool of threads (as in production).
        # Teams' webhooks too: waiting on other people's servers, never on the job worker's processes.
        Child("downloads", [python, "-m", "celery", "-A", "project", "worker", "-Q", "download,webhooks", "-P", "threads",
                            "-c", "8", "-n", "download@%h", "--loglevel", "INFO"],
              stop_signal=signal.SIGTERM, ready=" ready."),
    ]


def _port_in_use(port: int) -> bool:
    """True if something already listens on 127.0.0.1:``port`` (as the servers bind: SO_REUSEADDR,
    so a port left in TIME_WAIT by the last run counts as free)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class Command(BaseCommand):
    help = ("Run the sandbox providers, the web server and the Celery workers (with beat); Ctrl-C or SIGTERM "
            "stops all.")

    def handle(self, *args, **options):
        try:
            port = envint("PORT", 8000, minimum=1)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc), returncode=2) from None
        sandbox = urlsplit(settings.KILN_SANDBOX_URL)
        if sandbox.hostname not in ("127.0.0.1", "localhost") or not sandbox.port:
            raise CommandError(f"KILN_SANDBOX_URL must be http://127.0.0.1:PORT for runkiln, got "
                               f"{settings.KILN_SANDBOX_URL!r}", returncode=2)
        if port == sandbox.port:
            raise CommandError(f"PORT {port} is the sandbox's port too (KILN_SANDBOX_URL); choose another PORT, "
                               f"e.g. PORT={port + 1} make run.", returncode=2)
        for what, number, fix in (("Kiln's port", port, f"choose another: PORT={port + 1} make run"),
                                  ("The sandbox's port", sandbox.port, "set another in KILN_SANDBOX_URL")):
            if _port_in_use(number):
                raise CommandError(f"{what} {number} is already in use on 127.0.0.1 (another Kiln still "
                                   f"running, or another program). Stop it, or {fix}.", returncode=2)
        env = {**os.environ, "KILN_ALLOW_PRIVATE_URLS": "1", "PYTHONUNBUFFERED": "1"}
        url = f"http://127.0.0.1:{port}/"

        def announce():
            supervisor.say("kiln", f"Kiln is running: open {url}  (Ctrl-C stops everything)")

        supervisor = Supervisor(kiln_children(port, sandbox.port), env=env, out=self.stdout,
                                on_started=announce)
        status = supervisor.run()
        if status:
            raise CommandError("A Kiln process kept crashing (see its last lines above); everything was shut down.",
                               returncode=status)
