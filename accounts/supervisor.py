"""A small process supervisor for ``manage.py runkiln`` (no Django needed here).

Starts every child in its own session (so a terminal's Ctrl-C reaches only the
supervisor, which then stops the children in order), prefixes each line of
their output with the child's name, and:

- on SIGINT / SIGTERM: sends every child its own stop signal, waits, then
  terminates and at last kills what is left (whole process groups); exits 0;
- when a child dies on its own: stops the others the same way and exits with
  status 1 (a half-running Kiln is worse than none).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Child:
    name: str
    argv: list[str]
    # What asks this program to shut down cleanly (Celery's worker exits 0 on SIGTERM, 1 on SIGINT).
    stop_signal: int = signal.SIGINT
    process: subprocess.Popen | None = field(default=None, repr=False)
    reader: threading.Thread | None = field(default=None, repr=False)


class Supervisor:
    def __init__(self, children: list[Child], *, env: dict[str, str] | None = None, out: TextIO | None = None,
                 grace: float = 10.0, on_started: Callable[[], None] | None = None):
        self.children = children
        self.env = env
        self.out = out or sys.stdout
        self.grace = grace
        self.on_started = on_started
        self.width = max(len(c.name) for c in children)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._signal: int | None = None

    def say(self, name: str, line: str) -> None:
        with self._lock:
            self.out.write(f"{name:<{self.width}} | {line.rstrip()}\n")
            self.out.flush()

    def _pump(self, child: Child) -> None:
        assert child.process is not None and child.process.stdout is not None
        for line in child.process.stdout:
            self.say(child.name, line)

    def _on_signal(self, signum, frame) -> None:
        self._signal = signum
        self._stop.set()

    def start(self) -> None:
        for child in self.children:
            child.process = subprocess.Popen(  # noqa: S603 (argv built by runkiln, no shell)
                child.argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                text=True, errors="replace", bufsize=1, start_new_session=True)
            child.reader = threading.Thread(target=self._pump, args=(child,), name=f"pump-{child.name}", daemon=True)
            child.reader.start()
            self.say("kiln", f"started {child.name} (pid {child.process.pid}): {' '.join(child.argv)}")

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            if self.on_started:
                threading.Thread(target=self.on_started, name="on-started", daemon=True).start()
            failed: Child | None = None
            while not self._stop.wait(0.2):
                failed = next((c for c in self.children if c.process and c.process.poll() is not None), None)
                if failed:
                    break
            if failed:
                self.say("kiln", f"{failed.name} exited with status {failed.process.returncode}; stopping the others.")
            else:
                self.say("kiln", f"{signal.Signals(self._signal).name if self._signal else 'stop'} received; stopping.")
            self.stop()
            return 1 if failed else 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _send(self, sig: int | None) -> None:
        """``None``: each child's own stop signal, to the child alone (it stops its own
        workers); any other signal goes to the child's whole process group."""
        for child in self.children:
            if child.process and child.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    if sig is None:
                        os.kill(child.process.pid, child.stop_signal)
                    else:
                        os.killpg(child.process.pid, sig)

    def _wait_all(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if all(c.process is None or c.process.poll() is not None for c in self.children):
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
                still = ", ".join(c.name for c in self.children if c.process and c.process.poll() is None)
                self.say("kiln", f"still running after {signal.Signals(sig).name if sig else 'the stop signal'}: {still}")
        for child in self.children:
            if child.reader:
                child.reader.join(timeout=2)
            if child.process:
                self.say("kiln", f"{child.name} stopped (status {child.process.returncode}).")
