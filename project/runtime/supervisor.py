"""A small process supervisor for ``manage.py runkiln`` (no Django needed here).

Starts every child in its own session (so a terminal's Ctrl-C reaches only the
supervisor, which then stops the children in order), prefixes each line of
their output with the child's name, and, like a process manager:

- says "running" (``on_started``) once every child has printed its ready line;
- when a child dies on its own: prints its exit status and last lines and starts it
  again after a backoff (1 s, 2 s, 4 s ... at most 30 s); only a child that keeps
  crashing (``crash_limit`` times within ``crash_window`` seconds) stops everything,
  with status 1: a Kiln that cannot stay up should say so, not flap for ever;
- on SIGINT / SIGTERM / SIGHUP, also while the children are starting or one is waiting
  to be started again: sends every child its own stop signal, waits, then terminates and
  at last kills what is left (whole process groups); exits 0. Whatever else ends the
  supervisor stops the children first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Child:
    name: str
    argv: list[str]
    # What asks this program to shut down cleanly (Celery's worker exits 0 on SIGTERM, 1 on SIGINT).
    stop_signal: int = signal.SIGINT
    # Text in a line of its output that says it is up (None: up once started).
    ready: str | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)
    reader: threading.Thread | None = field(default=None, repr=False)
    last_lines: deque[str] = field(default_factory=lambda: deque(maxlen=10), repr=False)
    is_ready: bool = field(default=False, repr=False)
    crashes: deque[float] = field(default_factory=deque, repr=False)  # monotonic times, within the window
    restart_at: float | None = field(default=None, repr=False)  # waiting to be started again

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def describe(returncode: int) -> str:
    if returncode < 0:
        return f"signal {signal.Signals(-returncode).name}"
    return f"status {returncode}"


class Supervisor:
    def __init__(self, children: list[Child], *, env: dict[str, str] | None = None, out: TextIO | None = None,
                 grace: float = 20.0, on_started: Callable[[], None] | None = None,
                 crash_limit: int = 5, crash_window: float = 60.0, max_backoff: float = 30.0):
        self.children = children
        self.env = env
        self.out = out or sys.stdout
        self.grace = grace
        self.on_started = on_started
        self.crash_limit = crash_limit
        self.crash_window = crash_window
        self.max_backoff = max_backoff
        self.width = max(len(c.name) for c in [*children, Child("kiln", [])])
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._signal: int | None = None

    def say(self, name: str, line: str) -> None:
        with self._lock, contextlib.suppress(OSError):  # a closed terminal must not stop the supervisor
            self.out.write(f"{name:<{self.width}} | {line.rstrip()}\n")
            self.out.flush()

    def _pump(self, child: Child, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if child.process is not process:
                continue  # an earlier run's last lines, read after its restart
            child.last_lines.append(line.rstrip())
            if child.ready and not child.is_ready and child.ready in line:
                child.is_ready = True
            self.say(child.name, line)

    def _on_signal(self, signum, frame) -> None:
        self._signal = signum
        self._stop.set()

    def _spawn(self, child: Child) -> None:
        child.is_ready = child.ready is None
        child.last_lines.clear()
        child.process = subprocess.Popen(  # noqa: S603 (argv built by runkiln, no shell)
            child.argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True, errors="replace", bufsize=1, start_new_session=True)
        child.reader = threading.Thread(target=self._pump, args=(child, child.process), name=f"pump-{child.name}",
                                        daemon=True)
        child.reader.start()
        self.say("kiln", f"started {child.name} (pid {child.process.pid}): {' '.join(child.argv)}")

    def start(self) -> None:
        for child in self.children:
            if self._stop.is_set():  # a signal during start-up: start no more
                return
            self._spawn(child)

    def _crashed(self, child: Child, now: float) -> bool:
        """A child ended on its own: schedule its restart, or return True when it keeps crashing."""
        assert child.process is not None
        child.crashes.append(now)
        while child.crashes and child.crashes[0] < now - self.crash_window:
            child.crashes.popleft()
        # Whatever it left behind in its process group goes with it (a prefork pool's children,
        # which also hold its output pipe open), then its last lines are read to the end.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signal.SIGKILL)
        if child.reader:
            child.reader.join(timeout=2)
        self.say("kiln", f"{child.name} exited unexpectedly ({describe(child.process.returncode)}). Its last lines:")
        for line in child.last_lines:
            self.say("kiln", f"    {line}")
        if len(child.crashes) >= self.crash_limit:
            self.say("kiln", f"{child.name} crashed {len(child.crashes)} times within {self.crash_window:g} s; "
                             f"stopping everything.")
            return True
        delay = min(2.0 ** (len(child.crashes) - 1), self.max_backoff)
        self.say("kiln", f"restarting {child.name} in {delay:g} s ({len(child.crashes)} crash(es) within "
                         f"{self.crash_window:g} s; {self.crash_limit} stop Kiln).")
        child.restart_at = now + delay
        return False

    def run(self) -> int:
        # SIGHUP too: a closed terminal or SSH session reaches only the supervisor (the children
        # have sessions of their own), which must not die and leave them running.
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        given_up = None
        try:
            self.start()
            announced = False
            while not self._stop.wait(0.1):
                now = time.monotonic()
                for child in self.children:
                    if child.restart_at is not None:
                        if now >= child.restart_at and not self._stop.is_set():
                            child.restart_at = None
                            self._spawn(child)
                    elif not child.running and self._crashed(child, now):
                        given_up = child
                        break
                if given_up:
                    break
                if not announced and all(c.is_ready and c.running for c in self.children):
                    announced = True
                    if self.on_started:
                        self.on_started()
            if not given_up:
                self.say("kiln", f"{signal.Signals(self._signal).name if self._signal else 'stop'} received; stopping.")
        finally:
            # Also when the supervisor itself fails (a child that cannot be started again, say):
            # it never leaves its children behind.
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 1 if given_up else 0

    def _send(self, sig: int | None) -> None:
        """``None``: each child's own stop signal, to the child alone (it stops its own
        workers); any other signal goes to the child's whole process group."""
        for child in self.children:
            if child.running:
                with contextlib.suppress(ProcessLookupError):
                    if sig is None:
                        os.kill(child.process.pid, child.stop_signal)
                    else:
                        os.killpg(child.process.pid, sig)

    def _wait_all(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not any(c.running for c in self.children):
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        """Each child's stop signal, then SIGTERM and at last SIGKILL to what is left."""
        for sig, wait in ((None, self.grace), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            self._send(sig)
            if self._wait_all(wait):
                break
            if sig != signal.SIGKILL:
                still = ", ".join(c.name for c in self.children if c.running)
                self.say("kiln", f"still running after {signal.Signals(sig).name if sig else 'the stop signal'}: {still}")
        for child in self.children:
            if child.process:  # what a child's own process group still holds (a pool that outlived it)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.process.pid, signal.SIGKILL)
            if child.reader:
                child.reader.join(timeout=2)
            if child.process and child.restart_at is None:
                self.say("kiln", f"{child.name} stopped ({describe(child.process.returncode)}).")
