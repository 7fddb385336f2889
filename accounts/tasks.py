"""Accounts tasks (thin: the work is in ``accounts.credits.services`` and Django's auth forms)."""

from urllib.parse import urlsplit

from celery import shared_task
from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm
from django.utils import timezone

from accounts.credits.services import apply_monthly_allowance
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


@shared_task(name="accounts.tasks.send_password_reset", ignore_result=True)
def send_password_reset(email: str, site: str) -> None:
    """E-mail a reset link to the account with ``email``, if there is one (with a password:
    an invited person who never chose one accepts their invitation instead).

    A task, not the request: the page answers at once and the same way for every address;
    only this worker knows whether a message went out. Django's form does the work
    (a single-use token, valid PASSWORD_RESET_TIMEOUT seconds) with Kiln's templates."""
    form = PasswordResetForm({"email": email})
    if not form.is_valid():
        return
    parts = urlsplit(site)
    form.save(domain_override=parts.netloc, use_https=parts.scheme == "https",
              subject_template_name="accounts/email/password_reset_subject.txt",
              email_template_name="accounts/email/password_reset.txt",
              html_email_template_name="accounts/email/password_reset.html",
              extra_email_context={"minutes": settings.PASSWORD_RESET_TIMEOUT // 60})
