"""``manage.py runbeat [celery beat options]``: Celery beat, one in the whole installation.

Run it on as many hosts as you like (docs/deploy.md): the process that holds a PostgreSQL
advisory lock ticks, the others wait as standbys and one of them takes over within a few seconds
of the holder's death. A holder whose lock's session is lost stops beat and exits 1 (systemd
starts it again, as a standby). How and within what bounds: project/runtime/beatlock.py.

The options after ``runbeat`` are ``celery beat``'s own (``-s``, ``-l``, ``--max-interval``…),
except ``--detach``: the lock belongs to this process, so beat must run in it.
"""

import argparse
import logging
import os
import sys
import threading

import click
from celery import signals
from django.core.management.base import BaseCommand, CommandError

from project.celery import app
from project.runtime.beatlock import BeatLock, NotPostgres

logger = logging.getLogger("project.runtime.beatlock")

# After the lock is lost, beat gets this long to stop by itself (it notices between two ticks)
# before the process is ended outright.
STOP_GRACE_SECONDS = 5.0


class Command(BaseCommand):
    help = ("Run Celery beat while holding the installation's beat lock (PostgreSQL); wait as a standby while "
            "another process holds it. Options are celery beat's (-s, -l, --max-interval…).")

    def add_arguments(self, parser):
        parser.add_argument("beat_args", nargs=argparse.REMAINDER, help="celery beat's options")

    def run_from_argv(self, argv):
        # Everything after "runbeat" is for celery beat, whose options (-s, -l…) Django's parser
        # would refuse or take for its own (-v).
        self._beat_args = argv[2:]
        super().run_from_argv(argv[:2])

    def handle(self, *args, beat_args=(), **options):
        beat_args = list(getattr(self, "_beat_args", None) or beat_args)
        if "--help" in beat_args:
            app.start(["beat", "--help"])
            return
        if "--detach" in beat_args:
            raise CommandError("runbeat cannot --detach: the beat lock belongs to this process, so beat must run "
                               "in it. Let systemd (or another supervisor) keep it in the background.", returncode=2)
        _check_beat_args(beat_args)
        try:
            lock = BeatLock()
        except NotPostgres as exc:
            raise CommandError(
                f"runbeat guarantees one beat across hosts with a PostgreSQL advisory lock; this database is "
                f"{exc}. On one machine, run one `celery -A project beat` (or `make run`, whose worker embeds "
                f"it with -B); several hosts need PostgreSQL (DATABASE_URL=postgres://…).", returncode=2) from None

        lock.wait()
        services = []
        signals.beat_init.connect(lambda sender, **kw: services.append(sender), weak=False)

        def on_lost(reason: str) -> None:
            logger.error("runbeat: lost the beat lock: %s; stopping beat (exit 1) so that no two beats tick", reason)
            for service in services:
                service.stop()
            timer = threading.Timer(STOP_GRACE_SECONDS, _exit_now)
            timer.daemon = True
            timer.start()

        lock.watch(on_lost)
        try:
            app.start(["beat", *beat_args])
        except click.ClickException as exc:  # a bad option: celery's own words
            raise CommandError(f"celery beat: {exc.format_message()}", returncode=2) from None
        finally:
            lock.release()
        if lock.lost.is_set():
            sys.exit(1)


def _check_beat_args(beat_args: list[str]) -> None:
    """Parse beat's options now, not once a standby finally gets the lock hours later."""
    from celery.bin.base import CLIContext
    from celery.bin.beat import beat

    try:
        beat.make_context("runbeat", [arg for arg in beat_args if arg != "--help"],
                          obj=CLIContext(app=app, no_color=True, workdir=None))
    except click.ClickException as exc:
        raise CommandError(f"celery beat: {exc.format_message()}", returncode=2) from None


def _exit_now() -> None:
    """Beat did not stop within the grace (a publish stuck on a dead broker): end the process."""
    logger.error("runbeat: beat did not stop within %g s of losing the lock; exiting now", STOP_GRACE_SECONDS)
    logging.shutdown()
    os._exit(1)
