"""One Celery beat in the whole installation: a PostgreSQL session-level advisory lock.

Every host may run ``manage.py runbeat``; only the process holding the lock ticks. The lock
lives on a connection of its own, so it is held exactly as long as that session is:

- the holder exits (stop, crash, SIGKILL, OOM): the kernel closes its socket, PostgreSQL ends the
  session at once and frees the lock; a standby, which tries every ``RETRY_SECONDS``, takes it
  within that interval;
- the holder's host vanishes (power, network): PostgreSQL notices through the TCP keepalives set
  below (``SERVER_KEEPALIVE``: about 25 s) and frees the lock. The holder, if it is still running,
  meets a failing check first (every ``CHECK_SECONDS``, each bounded by ``tcp_user_timeout``) and
  stops ticking before the server lets anyone else take over;
- the session is ended under the holder (``pg_terminate_backend``, a database restart or
  fail-over): its next check fails, and the holder stops beat and exits non-zero, to be started
  again by systemd as a standby. Two beats can then tick together for at most one check
  interval (plus the beat's sleep between ticks, one poll tick).

Two beats ticking at once is harmless to the data (every tick's work is a compare-and-swap or
``SELECT … FOR UPDATE SKIP LOCKED``), but doubles the poll ticks and the sweeps; the lock keeps
it to the one check interval above.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from django.db import connections

logger = logging.getLogger(__name__)

# The lock's key: the bytes "kilnbeat" as one bigint. Advisory locks are per database, so two
# Kiln installations sharing a PostgreSQL server (one database each) do not contend.
LOCK_KEY = int.from_bytes(b"kilnbeat", "big")
RETRY_SECONDS = 2.0  # a standby tries the lock this often
CHECK_SECONDS = 2.0  # the holder checks its lock's session this often
WAITING_LOG_SECONDS = 60.0  # a standby says it is still waiting this often

# libpq and server settings for the lock's session: a dead peer is noticed in bounded time on
# both ends (the client's checks fail within ~5 s; the server frees the lock after ~10 + 5 * 3 s).
CLIENT_KEEPALIVE = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3,
                    "tcp_user_timeout": 5000, "connect_timeout": 5}
SERVER_KEEPALIVE = ("-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"
                    " -c statement_timeout=5000 -c idle_in_transaction_session_timeout=0")


class NotPostgres(Exception):
    """The database cannot hold the lock (SQLite: one machine, where one beat needs no lock)."""


class BeatLock:
    """The advisory lock on a dedicated connection, tried until taken, then watched.

    ``wait()`` blocks until this process holds the lock. ``watch(on_lost)`` checks the lock's
    session every ``check_seconds`` on a thread of its own and calls ``on_lost(reason)`` once,
    from that thread, when the session is gone."""

    def __init__(self, alias: str = "default", retry_seconds: float = RETRY_SECONDS,
                 check_seconds: float = CHECK_SECONDS):
        if connections[alias].vendor != "postgresql":
            raise NotPostgres(connections[alias].vendor)
        self.connection = connections.create_connection(alias)  # not Django's per-thread one
        options = dict(self.connection.settings_dict.get("OPTIONS", {}))
        options.pop("pool", None)  # one long-lived session, never a pooled one
        options["options"] = f"{options.get('options', '')} {SERVER_KEEPALIVE}".strip()
        self.connection.settings_dict = {**self.connection.settings_dict, "CONN_MAX_AGE": None,
                                         "OPTIONS": {**CLIENT_KEEPALIVE, **options}}
        self.connection.inc_thread_sharing()  # taken on the main thread, watched from another
        self.retry_seconds, self.check_seconds = retry_seconds, check_seconds
        self.lost = threading.Event()
        self._released = threading.Event()

    def _query(self, sql: str, params: tuple = ()):
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()[0]

    def try_acquire(self) -> bool:
        try:
            return bool(self._query("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)))
        except Exception as exc:  # the database is down or restarting: keep waiting, say why
            logger.warning("runbeat: cannot try the beat lock (%s: %s); trying again", type(exc).__name__, exc)
            self.connection.close()
            return False

    def wait(self) -> None:
        started = time.monotonic()
        said = None
        while not self.try_acquire():
            if said is None or time.monotonic() - said >= WAITING_LOG_SECONDS:
                logger.info("runbeat: another beat holds the lock; waiting as a standby (trying every %g s)",
                            self.retry_seconds)
                said = time.monotonic()
            time.sleep(self.retry_seconds)
        logger.info("runbeat: holding the beat lock (after %.1f s); this process is the beat",
                    time.monotonic() - started)

    def held(self) -> bool:
        """True while this session still holds the lock: one round trip to the server."""
        high, low = divmod(LOCK_KEY, 1 << 32)
        return bool(self._query(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()"
            " AND classid = %s AND objid = %s AND objsubid = 1", (high, low)))

    def watch(self, on_lost) -> threading.Thread:
        def run():
            while not self._released.wait(self.check_seconds):
                try:
                    if self.held():
                        continue
                    reason = "the lock is no longer held by this session"
                except Exception as exc:
                    reason = f"its connection failed ({type(exc).__name__}: {str(exc).strip()})"
                if self._released.is_set():
                    return
                self.lost.set()
                on_lost(reason)
                return

        thread = threading.Thread(target=run, name="beat-lock-watch", daemon=True)
        thread.start()
        return thread

    def release(self) -> None:
        """Close the session (which frees the lock), unless it is already gone."""
        self._released.set()
        with contextlib.suppress(Exception):  # already broken: nothing left to free
            self.connection.close()
