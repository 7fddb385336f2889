"""Several producer and consumer processes against one filesystem broker folder.

Used by tests/project/runtime/test_broker.py (Kiln's embedded broker) and runnable by hand to see
kombu's own filesystem transport fail the same count::

    .venv/bin/python -m tests.project.runtime.stress --transport kombu.transport.filesystem:Transport

Each producer sends ``messages / producers`` numbered messages; consumers take and ack them
until the producers are done and the queue is empty. It reports how many arrived once, how
many twice, how many never, and what the consumers could not read.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

KILN = "project.runtime.broker:Transport"
KOMBU = "kombu.transport.filesystem:Transport"
QUEUE = "stress"


def _connection(transport: str, options: dict):
    import kombu

    return kombu.Connection(transport=transport, transport_options=options)


def _produce(transport, options, index, count):
    with _connection(transport, options) as conn:
        queue = conn.SimpleQueue(QUEUE)
        for n in range(count):
            queue.put({"producer": index, "n": n}, serializer="json")
        queue.close()


def _consume(transport, options, done, results):
    received, unreadable = [], []
    with _connection(transport, options) as conn:
        queue = conn.SimpleQueue(QUEUE)
        while True:
            try:
                message = queue.get_nowait()
            except queue.Empty:
                if done.is_set():
                    break
                time.sleep(0.001)
                continue
            except Exception as exc:  # what kills a Celery worker: count it and go on
                unreadable.append(f"{type(exc).__name__}: {exc}")
                continue
            received.append((message.payload["producer"], message.payload["n"]))
            message.ack()
        queue.close()
    results.put((received, unreadable))


@dataclass
class Outcome:
    sent: int
    received: int
    unique: int
    duplicates: int
    lost: int
    unreadable: list[str]
    seconds: float

    def __str__(self):
        kinds = sorted({u.split(":")[0] for u in self.unreadable})
        return (f"{self.sent} sent, {self.unique} received once, {self.duplicates} twice or more, {self.lost} lost, "
                f"{len(self.unreadable)} unreadable {kinds or ''} in {self.seconds:.1f} s")


def run(transport: str, folder: Path, *, messages: int = 20_000, producers: int = 4, consumers: int = 4) -> Outcome:
    """Runs the exchange in fresh processes (spawned: no Django, no pytest state) on ``folder``."""
    from project.runtime.broker import transport_options

    options = transport_options(folder)
    if transport == KOMBU:  # kombu's transport reads the folders it knows and ignores the rest
        options = {k: v for k, v in options.items() if k in ("data_folder_in", "data_folder_out",
                                                           "processed_folder", "control_folder")}
    context = multiprocessing.get_context("spawn")
    done, results = context.Event(), context.Queue()
    started = time.monotonic()
    takers = [context.Process(target=_consume, args=(transport, options, done, results)) for _ in range(consumers)]
    makers = [context.Process(target=_produce, args=(transport, options, i, messages // producers))
              for i in range(producers)]
    for process in takers + makers:
        process.start()
    for process in makers:
        process.join()
    done.set()
    outcomes = [results.get(timeout=300) for _ in takers]
    for process in takers:
        process.join()
    received = [item for got, _ in outcomes for item in got]
    sent = messages // producers * producers
    unique = set(received)
    return Outcome(sent=sent, received=len(received), unique=len(unique), duplicates=len(received) - len(unique),
                   lost=sent - len(unique), unreadable=[u for _, bad in outcomes for u in bad],
                   seconds=time.monotonic() - started)


def _listen(transport, options, count, results):
    """A consumer as Celery's worker is one: drain_events on a kombu Consumer."""
    import kombu

    delays = []

    def got(body, message):
        delays.append(time.time() - body["sent"])
        message.ack()

    with _connection(transport, options) as conn:
        queue = kombu.Queue(QUEUE, kombu.Exchange(QUEUE), routing_key=QUEUE)
        with kombu.Consumer(conn, [queue], callbacks=[got], accept=["json"]):
            while len(delays) < count:
                try:
                    conn.drain_events(timeout=30)
                except TimeoutError:
                    break
    results.put(delays)


def latency(transport: str, folder: Path, *, messages: int = 200, every: float = 0.05) -> list[float]:
    """Seconds from send to delivery, one message every ``every`` s to an idle consumer."""
    from project.runtime.broker import transport_options

    options = transport_options(folder)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    listener = context.Process(target=_listen, args=(transport, options, messages, results))
    listener.start()
    with _connection(transport, options) as conn:
        queue = conn.SimpleQueue(QUEUE)
        time.sleep(3)  # the listener is up
        for _ in range(messages):
            queue.put({"sent": time.time()}, serializer="json")
            time.sleep(every)
        delays = results.get(timeout=120)
        queue.close()
    listener.join()
    return sorted(delays)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", default=KILN, help=f"{KILN} (Kiln's) or {KOMBU} (kombu's own)")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--consumers", type=int, default=4)
    parser.add_argument("--latency", action="store_true", help="delivery delay to an idle consumer instead")
    args = parser.parse_args()
    if args.latency:
        with tempfile.TemporaryDirectory() as folder:
            d = latency(args.transport, Path(folder))
            print(f"{args.transport}: {len(d)} delivered; delay p50 {1000 * d[len(d) // 2]:.0f} ms, "
                  f"p95 {1000 * d[int(len(d) * 0.95)]:.0f} ms, max {1000 * d[-1]:.0f} ms")
        return
    with tempfile.TemporaryDirectory() as folder:
        print(args.transport, run(args.transport, Path(folder), messages=args.messages, producers=args.producers,
                                  consumers=args.consumers))


if __name__ == "__main__":
    main()
