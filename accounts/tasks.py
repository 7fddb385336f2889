"""Credits tasks (thin: the work is in ``accounts.credits``)."""

from celery import shared_task
from django.utils import timezone

from accounts.credits import apply_monthly_allowance
from accounts.models import Team


@shared_task(name="accounts.tasks.monthly_allowance", ignore_result=True)
def monthly_allowance() -> int:
    """Top up every member of every team with an allowance for the current month.

    Beat runs it every hour; it is idempotent per wallet and month, so the first
    run of a month does the top-up and every later run changes nothing.
    """
    month = timezone.localdate()
    written = 0
    for team in Team.objects.filter(monthly_allowance__gt=0):
        written += apply_monthly_allowance(team, month)
    return written
