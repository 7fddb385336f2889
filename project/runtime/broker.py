"""The embedded broker of ``make run``: kombu's filesystem transport, made safe between processes.

kombu's own filesystem transport creates a message file and only then writes it, and its
consumers move and read files without any lock, so a consumer can read a file that is still
empty: ``JSONDecodeError`` in ``_get``, which Celery treats as an unrecoverable error and the
worker dies (kombu issue 1551). Its exchange tables are rewritten in place the same way.

This transport keeps kombu's layout and semantics (one file per message in a queue folder,
taken in name order) and changes how files change hands:

- **put**: the message is written whole under a temporary name in ``staging/`` and then
  renamed into the queue folder. A rename within one file system is atomic, so a consumer
  sees either no file or the whole file.
- **get**: a consumer claims a file by renaming it into ``processed/``; of several consumers
  racing for one file exactly one rename succeeds, the others move on to the next name. The
  claimed file is read, then removed.
- **a file that cannot be read as a message** (garbage written by hand, a disk that filled
  up) is logged, moved to ``corrupt/`` and skipped: it never reaches Celery, so it never
  stops a worker.
- **exchange tables** (fanout bindings in ``control/``) are rewritten under a lock file and
  replaced by a rename, so a reader never sees half a table.

What it does not do (docs/operations.md, "The embedded broker"): it is for one machine and a
small team. A message taken by a worker and not yet finished is in that worker's memory; a
worker stopped by SIGTERM or Ctrl-C puts its unfinished messages back, one killed outright
(SIGKILL, power loss) loses them. Every message Kiln sends is a wake-up whose work is also
recorded in the database, so a lost one delays a job until the next sweep, it never loses it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import uuid
from collections import deque
from functools import cached_property
from pathlib import Path
from time import monotonic

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

FOLDERS = ("queue", "staging", "processed", "corrupt", "control")


def transport_options(folder: Path) -> dict:
    """The transport options for an embedded broker under ``folder`` (created if missing)."""
    for sub in FOLDERS:
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "staging_folder": str(folder / "staging"),
        "processed_folder": str(folder / "processed"),
        "corrupt_folder": str(folder / "corrupt"),
        "control_folder": str(folder / "control"),
        # How often the worker looks again when every queue is empty (kombu's default: 1 s).
        "polling_interval": 0.1,
    }


def _replace(path: Path, data: bytes, staging: Path) -> None:
    """Write ``data`` to ``path`` whole: a temporary file first, then an atomic rename."""
    temporary = staging / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        with open(temporary, "xb") as f:
            f.write(data)
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)  # a full disk, say: no half file left behind
        raise


class Channel(filesystem.Channel):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._names: dict[str, deque[str]] = {}  # per queue: names listed, not yet tried

    def _folder(self, option: str, default: str) -> Path:
        """A folder of ours from the options, or beside the queue folder; created if missing."""
        folder = Path(self.transport_options.get(option) or Path(self.data_folder_out).parent / default)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @cached_property
    def staging_folder(self) -> Path:
        return self._folder("staging_folder", "staging")

    @cached_property
    def corrupt_folder(self) -> Path:
        return self._folder("corrupt_folder", "corrupt")

    # Messages.

    def _put(self, queue, payload, **kwargs):
        # Names sort in the order they were sent: a zero-padded monotonic clock (the same
        # clock in every process of one machine), then a random part against ties.
        name = f"{int(monotonic() * 1_000_000):016d}_{uuid.uuid4().hex}.{queue}.msg"
        try:
            _replace(Path(self.data_folder_out) / name, str_to_bytes(dumps(payload)), self.staging_folder)
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot add a message to {self.data_folder_out}: {exc}") from exc

    def _candidates(self, queue) -> deque[str]:
        names = self._names.get(queue)
        if not names:
            suffix = f"{queue}.msg"
            names = self._names[queue] = deque(sorted(
                n for n in os.listdir(self.data_folder_in) if n.partition(".")[2] == suffix))
        return names

    def _get(self, queue):
        try:
            return self._take(queue)
        except OSError as exc:  # a channel error: Celery reconnects instead of stopping the worker
            raise filesystem.ChannelError(f"Cannot take a message from {self.data_folder_in}: {exc}") from exc

    def _take(self, queue):
        names = self._candidates(queue)
        folder, processed = Path(self.data_folder_in), Path(self.processed_folder)
        while names:
            name = names.popleft()
            claimed = processed / name
            try:
                os.rename(folder / name, claimed)
            except FileNotFoundError:
                if not processed.is_dir():  # removed by hand: made again, and the file tried again
                    processed.mkdir(parents=True, exist_ok=True)
                    names.appendleft(name)
                continue  # otherwise another consumer took it first
            payload = self._read(claimed)
            if payload is None:
                self._set_aside(claimed)
                continue
            claimed.unlink()
            return payload
        raise filesystem.Empty()

    def _read(self, path: Path) -> dict | None:
        """The message in ``path``, or None (logged) when it is not one kombu could deliver."""
        try:
            payload = loads(bytes_to_str(path.read_bytes()))
            self.Message(payload, channel=self)  # what delivering it would do: properties, body encoding
        except Exception as exc:  # anything that would stop the worker
            logger.error("Broker: the message file %s cannot be read (%s: %s); set aside in %s and skipped.",
                         path.name, type(exc).__name__, exc, self.corrupt_folder)
            return None
        return payload

    def _set_aside(self, path: Path) -> None:
        with contextlib.suppress(OSError):
            os.replace(path, self.corrupt_folder / path.name)

    def _purge(self, queue):
        self._names.pop(queue, None)
        return super()._purge(queue)

    # Exchange tables (bindings of fanout and topic exchanges).

    @contextlib.contextmanager
    def _table_lock(self):
        self.control_folder.mkdir(exist_ok=True)
        with open(self.control_folder / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read_table(self, exchange) -> list:
        file = self._exchange_file(exchange)
        try:
            return [filesystem.exchange_queue_t(*q) for q in loads(bytes_to_str(file.read_bytes()))]
        except FileNotFoundError:
            return []
        except (ValueError, TypeError) as exc:
            logger.error("Broker: the exchange table %s cannot be read (%s); treated as empty.", file, exc)
            return []

    def get_table(self, exchange):
        return self._read_table(exchange)

    def _write_table(self, exchange, queues) -> None:
        _replace(self._exchange_file(exchange), str_to_bytes(dumps(queues)), self.staging_folder)

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with self._table_lock():
            queues = self._read_table(exchange)
            if binding not in queues:
                self._write_table(exchange, [binding, *queues])

    def _delete(self, queue, exchange, routing_key, pattern, *args, **kwargs):
        # The virtual channel's bookkeeping, without kombu's in-place rewrite of the table.
        filesystem.virtual.Channel._delete(self, queue, exchange, routing_key, pattern, *args, **kwargs)
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with self._table_lock():
            queues = self._read_table(exchange)
            if binding in queues:
                self._write_table(exchange, [q for q in queues if q != binding])


class Transport(filesystem.Transport):
    Channel = Channel
    # Not kombu's: channels of this transport share no state with its filesystem transport.
    global_state = filesystem.virtual.BrokerState()


# ``filesystem://`` means this transport wherever Kiln's settings are loaded (every Kiln
# process): also a CELERY_BROKER_URL from the environment, which Celery prefers to settings.
# kombu's own stays reachable by its full name, kombu.transport.filesystem:Transport.
TRANSPORT_ALIASES["filesystem"] = "project.runtime.broker:Transport"
