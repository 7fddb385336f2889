"""10. Scaling out: polling with one worker group, then two, 5,000 jobs in flight, same run.

A worker group is what one host runs: a poll worker (``celery worker -Q default,poll -c 2``,
prefork) and a download worker (``-Q download -P threads -c 16``). One beat for the whole
run, in a process of its own (``celery beat``), as production runs it on one host only.
Everything is on PostgreSQL and Redis; media on the file system.

5,000 Shark video jobs are submitted to the sandbox through the real adapter and written as
the engine's submit leaves them (``bench.lag``). The sandbox answers every provider request
after a random 50-200 ms (its ``latency_range``), as a real provider does, so a poll waits on
the network, not the CPU. Then the same jobs are polled by one group, by two, by one, by two
(the second group started and stopped in between; 15 s to settle, then a 30 s window each),
so both configurations meet the same jobs and, alternating, the same minutes of this shared
host. Job durations are spread over twenty minutes, so nearly all 5,000 stay in flight. At
Shark's 4 s poll interval 5,000 jobs ask for ~1,250 polls/s, more than one group can do: what
a configuration sustains is its polling throughput, and the rows left overdue its backlog.

Per configuration, over its windows: polls/s (the rows' ``poll_count``), requests/s at the
sandbox (its jobs' poll counts), CPU of every process (the poll workers, download workers,
sandbox, beat, the PostgreSQL backends of the bench database, and the whole host from
/proc/stat), backends waiting on a lock, the backlog (rows overdue by more than a second),
and the completion lag of the jobs that completed at the sandbox during a window
(``finished_at`` in Kiln minus the sandbox's ``completed_at``; a job not finished when the
window closes counts with its wait so far, a lower bound).

Target (issue 18, point 5): two groups poll at least 1.7x as fast as one. If they do not, the
rows say where the ceiling is: the host's CPU, the sandbox (one Python process) or the database,
and how many cores 1.7x one group would take at this run's CPU per poll.

The control: the same with 4 poll threads a process instead of 32 (2,000 jobs, 20 s windows),
so each group is bound by the provider's latency at a fraction of the CPU. It
shows whether the engine itself scales with the workers once the CPU is not the limit.

``--quick``: 1,000 jobs, one round of 20 s windows (15 s for the control); the ratios are
reported, not judged.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

from bench import common
from bench.common import Row, log, median, percentile
from bench.lag import PROMPT, _insert_submitted, _model_and_params, _submit_batch

LATENCY = (0.05, 0.2)      # seconds the sandbox takes to answer a provider request
TARGET_RATIO = 1.7
LAG_MARGIN = 2.0           # the lag target: the poll interval + this, download included
POLL_PROCESSES = 2         # a group's poll worker: -c 2, as docs/operations.md runs it
CONTROL_THREADS = 4        # the I/O-bound control: 4 poll threads a process instead of 32


def _host_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole host since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]   # idle + iowait
    total = sum(fields[:8])        # guest time is already in user
    return (total - idle) / common.CLK_TCK, total / common.CLK_TCK


def _lock_waits() -> int:
    """Backends of the bench database waiting on a heavyweight lock right now."""
    with common._admin_connection() as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
                            (common.DB_NAME,)).fetchone()[0]


class _Group:
    """One host's workers: a poll worker of ``-c 2`` processes and a download worker of threads."""

    def __init__(self, n: int, concurrency: int):
        env = {"KILN_POLL_CONCURRENCY": str(concurrency)}
        self.poll = common.start_worker(f"poll{n}", "default,poll", POLL_PROCESSES, env=env)
        self.download = common.start_worker(f"download{n}", "download", common.DOWNLOAD_THREADS, pool="threads",
                                            env=env)

    def stop(self) -> None:
        self.poll.stop()
        self.download.stop()


class _Series:
    """One set of jobs in flight, polled in turn by one group and by two: the first group runs
    throughout, the second is started and stopped between windows, so both configurations
    meet the same jobs and, alternating, the same minutes of a shared host."""

    def __init__(self, sandbox: common.Sandbox, beat: common.Child, name: str, count: int, concurrency: int,
                 spread: tuple[float, float]):
        from generations.models import Generation, Prompt
        from generations.providers.base import Credentials

        self.sandbox, self.beat, self.count, self.concurrency = sandbox, beat, count, concurrency
        provider, self.model, params = _model_and_params()
        team, (member,) = common.make_team(name)
        key = common.make_key(team, sandbox)
        creds = Credentials(api_key=key.get_api_key(), base_url=key.base_url)
        prompt = Prompt.objects.create(team=team, author=member.user, text=PROMPT)
        sandbox.reset()
        sandbox.control(duration_range=list(spread))
        self.groups = [_Group(1, concurrency)]
        log(f"scaling: {concurrency} poll threads a process, submitting {count} jobs")
        started = time.time()
        for chunk in range(0, count, 500):
            job_ids = _submit_batch(provider, self.model, params, creds, min(500, count - chunk))
            _insert_submitted(team, member, key, prompt, self.model, params, job_ids, provider)
        sandbox.control(latency_range=list(LATENCY))
        log(f"scaling: {count} jobs in flight after {time.time() - started:.0f} s")
        self.rows = Generation.objects.filter(team=team)

    def window(self, groups: int, settle: float, seconds: float) -> dict:
        """Run ``groups`` groups, let them settle, then measure for ``seconds``."""
        from django.db.models import Sum
        from django.utils import timezone

        from generations.models import IN_FLIGHT, TERMINAL

        while len(self.groups) < groups:
            self.groups.append(_Group(len(self.groups) + 1, self.concurrency))
        while len(self.groups) > groups:
            self.groups.pop().stop()
        time.sleep(settle)
        rows = self.rows

        def polls() -> int:
            return rows.aggregate(n=Sum("poll_count"))["n"] or 0

        def sandbox_polls() -> int:
            return sum(job["polls"] for job in self.sandbox.jobs())

        children = {"poll workers": [g.poll for g in self.groups],
                    "download workers": [g.download for g in self.groups],
                    "sandbox": [self.sandbox.child], "beat": [self.beat]}
        cpu0 = {name: sum(c.cpu_seconds() for c in kids) for name, kids in children.items()}
        pg = common.BackendCpu()
        in_flight0 = rows.exclude(status__in=TERMINAL).count()
        host0, t0, polls0, sb0 = _host_busy(), time.time(), polls(), sandbox_polls()
        waits, overdue, samples = 0, 0, 0
        while time.time() < t0 + seconds:
            time.sleep(2)
            pg.sample()
            waits += _lock_waits()
            # Rows due more than a second ago and not yet claimed: the backlog (0: keeping up).
            overdue += rows.filter(status__in=IN_FLIGHT, next_poll_at__lt=timezone.now() - timedelta(seconds=1)).count()
            samples += 1
        host1, t1, polls1, sb1 = _host_busy(), time.time(), polls(), sandbox_polls()
        cpu = {name: sum(c.cpu_seconds() for c in kids) - cpu0[name] for name, kids in children.items()}
        pg.sample()
        lags, detects, unfinished = self._lags(t0, t1)
        result = {
            "groups": groups, "seconds": t1 - t0, "polls": polls1 - polls0, "sandbox_requests": sb1 - sb0,
            "in_flight": [in_flight0, rows.exclude(status__in=TERMINAL).count()],
            "cpu_s": cpu | {"postgres": pg.total()}, "host_busy_s": host1[0] - host0[0],
            "load_avg": os.getloadavg()[0], "lock_waits": waits / max(1, samples),
            "backlog": overdue / max(1, samples), "lags": lags, "detects": detects, "unfinished": unfinished,
        }
        log(f"scaling: {groups} group(s), {self.concurrency} threads: {result['polls'] / result['seconds']:.0f} "
            f"polls/s, backlog {result['backlog']:.0f}, host {result['host_busy_s'] / result['seconds']:.2f} of "
            f"{os.cpu_count()} cores busy, load {result['load_avg']:.1f}")
        return result

    def _lags(self, t0: float, t1: float) -> tuple[list[float], list[float], int]:
        """Completion lag of the jobs that completed at the sandbox inside the window (the last
        interval + LAG_MARGIN seconds left out: they had no time to be seen yet); a job not
        finished in Kiln when the window closed counts with its wait so far, a lower bound."""
        from generations.models import Status

        finished = {r["provider_job_id"]: r for r in self.rows.values("provider_job_id", "status", "finished_at")}
        lags, detects, unfinished = [], [], 0
        cutoff = t1 - self.model.poll_interval - LAG_MARGIN
        for job in self.sandbox.jobs():
            done = job["completed_at"]
            if not done or not t0 <= done <= cutoff:
                continue
            row = finished[job["id"]]
            if row["status"] == Status.SUCCEEDED and row["finished_at"].timestamp() <= t1:
                lags.append(row["finished_at"].timestamp() - done)
            else:
                unfinished += 1
                lags.append(t1 - done)
            if job["first_seen_terminal_at"]:
                detects.append(job["first_seen_terminal_at"] - done)
        return lags, detects, unfinished

    def close(self) -> None:
        """Stop the workers; the jobs still in flight are given up (no ledger was written for
        them), so the next series' workers poll only their own."""
        from generations.models import TERMINAL, Status

        for group in self.groups:
            group.stop()
        self.rows.exclude(status__in=TERMINAL).update(status=Status.CANCELLED, next_poll_at=None)
        self.sandbox.control(latency_range=None)


def _combine(windows: list[dict], concurrency: int) -> dict:
    """One configuration's figures over its windows."""
    seconds = sum(w["seconds"] for w in windows)
    polls = sum(w["polls"] for w in windows)
    cpu = {name: sum(w["cpu_s"][name] for w in windows) for name in windows[0]["cpu_s"]}
    lags = [lag for w in windows for lag in w["lags"]]
    detects = [d for w in windows for d in w["detects"]]
    groups = windows[0]["groups"]
    return {
        "groups": groups, "windows": len(windows), "seconds": seconds,
        "polls_per_s": polls / seconds, "polls_per_s_each": [w["polls"] / w["seconds"] for w in windows],
        "sandbox_requests_per_s": sum(w["sandbox_requests"] for w in windows) / seconds,
        "in_flight": [windows[0]["in_flight"][0], windows[-1]["in_flight"][1]],
        "cores": {name: value / seconds for name, value in cpu.items()},
        "host_busy_cores": sum(w["host_busy_s"] for w in windows) / seconds, "host_cores": os.cpu_count(),
        "load_avg": [w["load_avg"] for w in windows],
        "lock_waits_mean": sum(w["lock_waits"] for w in windows) / len(windows),
        "overdue_mean": sum(w["backlog"] for w in windows) / len(windows),
        "lag_n": len(lags), "lag_unfinished": sum(w["unfinished"] for w in windows),
        "lag_p50": median(lags), "lag_p95": percentile(lags, 95),
        "detect_p50": median(detects), "detect_p95": percentile(detects, 95),
        "poll_worker_ms_per_poll": 1000 * cpu["poll workers"] / max(1, polls),
        "sandbox_ms_per_request": 1000 * cpu["sandbox"] / max(1, sum(w["sandbox_requests"] for w in windows)),
        "postgres_ms_per_poll": 1000 * cpu["postgres"] / max(1, polls),
        "concurrency": concurrency,
        "io_ceiling_per_s": groups * POLL_PROCESSES * concurrency / (sum(LATENCY) / 2),
    }


def _alternate(series: _Series, rounds: int, settle: float, seconds: float) -> tuple[dict, dict]:
    """One group, two groups, one, two... ``rounds`` times each; (one group's figures, two groups')."""
    windows: dict[int, list[dict]] = {1: [], 2: []}
    try:
        for _ in range(rounds):
            for groups in (1, 2):
                windows[groups].append(series.window(groups, settle, seconds))
    finally:
        series.close()
    return _combine(windows[1], series.concurrency), _combine(windows[2], series.concurrency)


def _bottleneck(one: dict, two: dict) -> str:
    """Where two groups' polling stopped growing, from the figures of the two-group phase."""
    cores = two["host_cores"]
    if two["host_busy_cores"] >= 0.9 * cores:
        return (f"CPU: the host's {cores} cores {100 * two['host_busy_cores'] / cores:.0f} % busy, "
                f"{_ours(two):.2f} of them this run's processes")
    if two["cores"]["sandbox"] >= 0.85:
        return f"sandbox: its one process at {100 * two['cores']['sandbox']:.0f} % of a core"
    if two["lock_waits_mean"] >= 1 or two["cores"]["postgres"] >= 0.5 * cores:
        return (f"database: {two['lock_waits_mean']:.1f} backends waiting on locks, "
                f"{two['cores']['postgres']:.2f} cores")
    return "none found: the polls are bounded by the provider's latency (I/O)"


def _ours(phase: dict) -> float:
    """Cores used by the run's own processes (workers, beat, sandbox, PostgreSQL backends)."""
    return sum(phase["cores"].values())


def run(sandbox: common.Sandbox, quick: bool = False) -> tuple[list[Row], dict]:
    count, control_count = (1000, 1000) if quick else (5000, 2000)
    rounds, settle = (1, 10.0) if quick else (2, 15.0)
    window, control_window = (20.0, 15.0) if quick else (30.0, 20.0)
    # A twentieth of the jobs complete a minute: the 5,000 stay nearly all in flight through
    # the ~4 minutes of windows, and a few hundred completions give the lag.
    spread = (20.0, 420.0) if quick else (30.0, 1230.0)
    schedule = common.VAR / "beat-scaling"
    schedule.unlink(missing_ok=True)
    beat = common.Child("beat", [common.PY, "-m", "celery", "-A", "project", "beat", "-s", str(schedule),
                                 "-l", "WARNING"])
    from django.conf import settings

    threads = settings.KILN_POLL_CONCURRENCY
    try:
        main = _Series(sandbox, beat, "scale", count, threads, spread)
        one, two = _alternate(main, rounds, settle, window)
        common.flush_redis()
        control = _Series(sandbox, beat, "scale-control", control_count, CONTROL_THREADS, spread)
        control_one, control_two = _alternate(control, rounds, settle, control_window)
    finally:
        beat.stop()
    phases = {"one": one, "two": two, "control_one": control_one, "control_two": control_two}
    ratio = two["polls_per_s"] / max(1e-9, one["polls_per_s"])
    control_ratio = phases["control_two"]["polls_per_s"] / max(1e-9, phases["control_one"]["polls_per_s"])
    _, model, _ = _model_and_params()
    target_lag = model.poll_interval + LAG_MARGIN
    judged = not quick
    bottleneck = _bottleneck(one, two)
    # What 1.7x one group would take, at this run's CPU per poll of every process involved.
    cpu_per_poll = _ours(one) / max(1e-9, one["polls_per_s"])
    wanted = TARGET_RATIO * one["polls_per_s"]
    needed = {"polls_per_s": wanted, "cores": wanted * cpu_per_poll, "cpu_ms_per_poll": 1000 * cpu_per_poll,
              "cores_without_sandbox": wanted * (cpu_per_poll - one["cores"]["sandbox"] / max(1e-9, one["polls_per_s"]))}
    n = f"{count:,} in flight"

    def cpu(phase: dict) -> str:
        c = phase["cores"]
        return (f"poll {c['poll workers']:.2f}, download {c['download workers']:.2f}, sandbox {c['sandbox']:.2f}, "
                f"PostgreSQL ≥{c['postgres']:.2f}; host {phase['host_busy_cores']:.2f} of {phase['host_cores']}, "
                f"load {min(phase['load_avg']):.0f}-{max(phase['load_avg']):.0f}")

    def polls(phase: dict) -> str:
        return f"{phase['polls_per_s']:.0f}/s, backlog {phase['overdue_mean']:.0f}"

    rows = [
        Row("scaling", f"polls/s, 2 groups vs 1, {n} ({LATENCY[0] * 1000:.0f}-{LATENCY[1] * 1000:.0f} ms a request)",
            polls(two), f"{polls(one)} (1 group)", f"{ratio:.2f}x",
            f"≥ {TARGET_RATIO}x", ratio >= TARGET_RATIO if judged else None),
        Row("scaling", "sandbox requests/s; jobs in flight first to last window",
            f"{two['sandbox_requests_per_s']:.0f}/s; {two['in_flight'][0]:,}-{two['in_flight'][1]:,}",
            f"{one['sandbox_requests_per_s']:.0f}/s; {one['in_flight'][0]:,}-{one['in_flight'][1]:,}"),
        Row("scaling", "p95 completion lag (p50), jobs completed in the window",
            f"{two['lag_p95']:.1f} s ({two['lag_p50']:.1f} s), {two['lag_n']} jobs",
            f"{one['lag_p95']:.1f} s ({one['lag_p50']:.1f} s), {one['lag_n']} jobs", "—",
            f"≤ {target_lag:g} s ({model.poll_interval:g} + {LAG_MARGIN:g})",
            two["lag_p95"] <= target_lag if judged else None),
        Row("scaling", "CPU in cores, 2 groups (1 group)", cpu(two), cpu(one)),
        Row("scaling", "CPU per poll: poll worker / sandbox / PostgreSQL",
            f"{two['poll_worker_ms_per_poll']:.1f} / {two['sandbox_ms_per_request']:.1f} / "
            f"≥{two['postgres_ms_per_poll']:.2f} ms",
            f"{one['poll_worker_ms_per_poll']:.1f} / {one['sandbox_ms_per_request']:.1f} / "
            f"≥{one['postgres_ms_per_poll']:.2f} ms"),
        Row("scaling", "ceiling of two groups", bottleneck,
            f"1.7x one group = {wanted:.0f} polls/s needs ≈{needed['cores']:.1f} cores at "
            f"{needed['cpu_ms_per_poll']:.1f} ms a poll ({needed['cores_without_sandbox']:.1f} with the sandbox elsewhere)"),
        Row("scaling", f"control, I/O-bound ({CONTROL_THREADS} poll threads a process), {control_count:,} in flight: "
            "polls/s 2 groups vs 1", polls(phases["control_two"]), f"{polls(phases['control_one'])} (1 group)",
            f"{control_ratio:.2f}x", f"≥ {TARGET_RATIO}x", control_ratio >= TARGET_RATIO if judged else None),
    ]
    return rows, {**phases, "ratio": ratio, "control_ratio": control_ratio, "bottleneck": bottleneck,
                  "needed": needed, "latency_s": LATENCY, "durations": spread}
