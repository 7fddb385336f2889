"""The fault suite: what each fault did to the jobs, as a table at the end of the run.

Every test ends with ``fault_report(fault, generations, sandbox)``, which looks at
the database, the stored files and the sandbox and counts, for those jobs:

- terminal: jobs in a terminal state (succeeded, failed, cancelled, expired);
- lost: jobs not terminal, plus succeeded jobs whose media is missing, short,
  or whose sha256 differs from Media.sha256 or from the sandbox's own bytes;
- duplicated: extra submissions the sandbox saw (one job sent twice) plus
  stored files beyond one per output;
- credit difference: how far the wallets are from the sum of their ledger
  entries (``accounts.credits.services.verify``), in credits.

It asserts terminal == jobs and zeros elsewhere, records the row, and
``pytest_terminal_summary`` prints the table (``make faults``).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

_ROWS: list[FaultRow] = []


@dataclass
class FaultRow:
    fault: str
    jobs: int
    terminal: int
    lost: int
    duplicated: int
    credit_difference: int
    outcome: str


def _sandbox_sha256(url: str) -> str | None:
    """The sandbox's own bytes for an output URL (media is deterministic per signed token)."""
    try:
        response = httpx.get(url, timeout=30)
    except httpx.HTTPError:
        return None
    return hashlib.sha256(response.content).hexdigest() if response.status_code == 200 else None


def _media_lost(generation) -> int:
    """How many of a succeeded generation's outputs are not stored whole."""
    outputs = generation.output_urls or []
    media = {m.position: m for m in generation.media.all()}
    lost = 0
    for position, output in enumerate(outputs):
        item = media.get(position)
        if item is None or not item.file:
            lost += 1
            continue
        try:
            with item.file.open("rb") as fh:
                stored = hashlib.sha256(fh.read()).hexdigest()
        except OSError:
            lost += 1
            continue
        expected = _sandbox_sha256(output.get("url") or "") if output.get("url") else None
        if stored != item.sha256 or (expected is not None and expected != stored):
            lost += 1
    return lost


def _stored_duplicates(generation) -> int:
    """Files in the generation's media folder beyond one file (+ its thumbnail) per Media row."""
    rows = list(generation.media.all())
    if not rows:
        return 0
    folder = Path(rows[0].file.path).parent
    if not folder.exists():
        return 0
    names = [p.name for p in folder.iterdir() if p.is_file()]
    expected = len(rows) + sum(1 for m in rows if m.thumbnail)
    return max(0, len(names) - expected) + max(0, len(rows) - len(generation.output_urls or []))


def tally(fault: str, pks: Iterable[int], sandbox=None) -> FaultRow:
    from accounts.credits import services as credits
    from generations.models import TERMINAL, Generation, Status

    pks = list(pks)
    generations = list(Generation.objects.filter(pk__in=pks).prefetch_related("media"))
    statuses = Counter(g.status for g in generations)
    terminal = sum(n for status, n in statuses.items() if status in TERMINAL)
    lost = len(pks) - terminal
    duplicated = 0
    for g in generations:
        if g.status == Status.SUCCEEDED:
            lost += _media_lost(g)
        duplicated += _stored_duplicates(g)
    if sandbox is not None:
        prompts = {g.prompt.text for g in Generation.objects.filter(pk__in=pks).select_related("prompt")}
        duplicated += sum(d["count"] - 1 for d in sandbox.jobs()["duplicates"] if d["key"] in prompts)
    difference = sum(abs(c.wallet.available - c.available_sum) + abs(c.wallet.reserved - c.reserved_sum)
                     for c in credits.verify())
    outcome = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
    return FaultRow(fault, len(pks), terminal, lost, duplicated, difference, outcome)


@pytest.fixture
def fault_report(request):
    """``fault_report(fault, generations_or_pks, sandbox=None) -> FaultRow``: count, record, assert."""

    def report(fault: str, generations, sandbox=None) -> FaultRow:
        pks = [getattr(g, "pk", g) for g in generations]
        row = tally(fault, pks, sandbox)
        _ROWS.append(row)
        assert (row.terminal, row.lost, row.duplicated, row.credit_difference) == (row.jobs, 0, 0, 0), row
        return row

    return report


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _ROWS:
        return
    headers = ("fault", "jobs", "terminal", "lost", "duplicated", "credit diff", "outcome")
    rows = [(r.fault, str(r.jobs), str(r.terminal), str(r.lost), str(r.duplicated), str(r.credit_difference),
             r.outcome) for r in _ROWS]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(c.ljust(w) if i in (0, 6) else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    terminalreporter.section("fault suite")
    terminalreporter.write_line(line(headers))
    terminalreporter.write_line("  ".join("-" * w for w in widths))
    for row in rows:
        terminalreporter.write_line(line(row))
    totals = [sum(r.jobs for r in _ROWS), sum(r.terminal for r in _ROWS), sum(r.lost for r in _ROWS),
              sum(r.duplicated for r in _ROWS), sum(r.credit_difference for r in _ROWS)]
    terminalreporter.write_line("  ".join("-" * w for w in widths))
    terminalreporter.write_line(line(("total", *map(str, totals), "")))


# ---------------------------------------------------------------------------
# Jobs on the Shark sandbox, driven through the real engine functions in-process
# (test_process_faults.py runs real Celery workers instead).


@pytest.fixture
def membership(owner, team):
    from accounts.models import Membership

    return Membership.objects.select_related("team", "user", "wallet").get(user=owner, team=team)


@pytest.fixture
def shark(team, sandbox, sandbox_key):
    return sandbox_key(team, "shark")


@pytest.fixture
def make(membership, shark):
    """make(prompt, model=VIDEO, **params) -> a queued Generation (prompts should differ per job)."""
    from generations.services import create_generation
    from tests.generations.conftest import VIDEO

    def make(prompt: str, model: str = VIDEO, **params):
        operation = "text-to-video" if model == VIDEO else "text-to-image"
        return create_generation(membership=membership, provider_id="shark", model_id=model, operation=operation,
                                 prompt=prompt, params=params)

    return make


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
