"""Kiln's benchmarks: ``make bench`` (all) or ``python bench/run.py [lag|gallery|status|download|burst|probe|zip|sandbox|webhook_lag|healthz ...]``.

It sets up what it needs on 127.0.0.1 and takes it down again: a dedicated
PostgreSQL database (``kiln_bench``: dropped, created, migrated; dropped at the
end unless ``--keep``), Redis database 9 (flushed), the provider sandbox as a
subprocess, and per benchmark the gunicorn (2 workers) or Celery workers it
uses. It prints one table: each figure next to its baseline measured in the
same run, the ratio, the target and whether it is met. Details go to
var/bench/results.json, process logs to var/bench/logs/.

``--quick``: smaller sizes for a sanity run (about two minutes).
Benchmarks print figures; they are not tests and ``make test`` does not run them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

BENCHMARKS = ("lag", "gallery", "status", "download", "burst", "probe", "zip", "sandbox", "webhook_lag", "healthz")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmarks", nargs="*", metavar="NAME",
                        help=f"which to run (default: all of {', '.join(BENCHMARKS)})")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a fast sanity run")
    parser.add_argument("--keep", action="store_true", help="keep the kiln_bench database afterwards")
    parser.add_argument("--embedded", action="store_true",
                        help="lag only: on make run's embedded default (SQLite, the embedded broker, its workers)")
    args = parser.parse_args(argv)
    if args.embedded:
        if set(args.benchmarks) != {"lag"}:
            parser.error("--embedded measures the lag benchmark only: bench/run.py lag --embedded")
        common.use_embedded()
    unknown = [n for n in args.benchmarks if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)} (choose from {', '.join(BENCHMARKS)})")
    names = [n for n in BENCHMARKS if n in args.benchmarks] or list(BENCHMARKS)

    common.install_signal_handlers()
    started = time.monotonic()
    common.log("setting up: SQLite and the embedded broker under var/bench-embedded, sandbox" if common.EMBEDDED
               else f"setting up: database {common.DB_NAME}, redis {common.REDIS_URL}, sandbox")
    common.create_database()
    common.setup_django()
    common.migrate()
    common.flush_redis()
    sandbox = common.Sandbox()
    rows: list[common.Row] = []
    details: dict = {"quick": args.quick, "embedded": common.EMBEDDED}
    try:
        for name in names:
            common.log(f"--- {name}")
            t0 = time.monotonic()
            module = importlib.import_module(f"bench.{name}")
            try:
                got, info = module.run(sandbox, quick=args.quick)
            except Exception as exc:
                traceback.print_exc()
                got, info = [common.Row(name, "did not finish", f"{type(exc).__name__}: {exc}"[:80], met=False)], {}
            info["seconds"] = round(time.monotonic() - t0, 1)
            rows += got
            details[name] = info
            common.log(f"--- {name} took {info['seconds']:.0f} s")
            sandbox.reset()
            common.flush_redis()
    finally:
        sandbox.stop()
        common.stop_all()
        if not args.keep:
            common.drop_database()
        common.flush_redis()
    details["total_seconds"] = round(time.monotonic() - started, 1)
    path = common.save_results(rows, details)
    print()
    print(f"Kiln benchmarks{' (quick)' if args.quick else ''}: {details['total_seconds']:.0f} s; "
          f"details in {path.relative_to(common.ROOT)}")
    print()
    common.print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
