"""Recovery: the sweep that finds rows whose wake-up was lost or whose worker died.

Celery messages are only wake-ups; the database is the source of truth. Beat
runs ``requeue_stuck`` every minute: queued rows nobody claimed are sent
again, a send whose job id was never saved within the submit lease is ended
``expired`` for review (never re-sent), stalled downloads are woken, and
in-flight rows without a poll time get one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from generations.engine import wakeups
from generations.engine.submit import mark_lost, submit_lease
from generations.models import IN_FLIGHT, Generation, Status

STUCK_QUEUED = timedelta(seconds=60)


def requeue_stuck(now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Find rows whose wake-up was lost or whose worker died, and move them on (pretix style)."""
    now = now or timezone.now()
    counts = {"submit": 0, "lost": 0, "download": 0, "poll": 0}
    unclaimed = (Generation.objects.filter(status=Status.QUEUED, claimed_at__isnull=True, created__lt=now - STUCK_QUEUED)
                 .filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now)).values_list("pk", flat=True)[:limit])
    for pk in unclaimed:
        wakeups.send(wakeups.SUBMIT, pk)
        counts["submit"] += 1
    abandoned = Generation.objects.filter(status=Status.QUEUED, claimed_at__lt=now - submit_lease(),
                                          provider_job_id="").values_list("pk", "claimed_at")[:limit]
    for pk, claimed_at in abandoned:
        counts["lost"] += mark_lost(pk, claimed_at, "no job id saved within the submit lease")
    stalled = (Generation.objects.filter(status=Status.DOWNLOADING)
               .filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lt=now - STUCK_QUEUED))
               .values_list("pk", flat=True)[:limit])
    for pk in stalled:
        wakeups.send(wakeups.DOWNLOAD, pk)
        counts["download"] += 1
    counts["poll"] = Generation.objects.filter(status__in=IN_FLIGHT, next_poll_at__isnull=True).update(next_poll_at=now)
    return counts
