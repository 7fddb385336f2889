"""Helpers for tests that start Kiln's processes: the database URL to give them, and their output."""

import queue
import subprocess
import threading
import time

from django.db import connection


def database_url() -> str:
    """The URL of the database this test process uses (its test database), for a child process."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user, host, port = db.get("USER") or "postgres", db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


class Output:
    """A process's output, read on a thread as it comes: a wait for a line never blocks
    longer than its own deadline, even when the process goes quiet."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.lines, self._new = proc, [], queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)
            self._new.put(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, seconds: float = 60) -> str:
        """The next line that holds ``text``; fails (with everything said so far) after ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._new.get(timeout=left)
            except queue.Empty:
                break
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} within {seconds:g} s:\n{self.text[-3000:]}")

    def finish(self, seconds: float) -> str:
        """Everything it said, once it has exited (and every process holding its output has)."""
        self.proc.wait(timeout=seconds)
        self._reader.join(timeout=seconds)
        return self.text
