"""E-mail Kiln sends (invitations, password resets), and the terminal backend of ``make run``.

Every message has a plain-text and an HTML part rendered from ``templates/accounts/email/``
and goes through Django's default mailer (``MAILERS`` in settings: SMTP from the
environment, or ``TerminalEmailBackend`` when no EMAIL_HOST is set).
"""

from __future__ import annotations

import os
import sys
import threading

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.base import BaseEmailBackend
from django.template.loader import render_to_string

BANNER = "=" * 22 + " Kiln e-mail (not sent: no EMAIL_HOST set) " + "=" * 22


class TerminalEmailBackend(BaseEmailBackend):
    """Prints each message, readable and clearly labelled, instead of sending it.

    Django's console backend prints the raw MIME message, where quoted-printable
    breaks a long link over several lines; this prints the headers that matter and
    the plain-text part as is, so the link can be copied from the terminal."""

    def __init__(self, *, stream=None, **kwargs):
        super().__init__(**kwargs)
        self.stream = stream or sys.stdout
        self._lock = threading.RLock()

    def send_messages(self, email_messages):
        with self._lock:
            for message in email_messages:
                parts = ", ".join(["text/plain", *(alt.mimetype for alt in getattr(message, "alternatives", []))])
                self.stream.write(
                    f"\n{BANNER}\nFrom: {message.from_email}\nTo: {', '.join(message.to)}\n"
                    f"Subject: {message.subject}\nParts: {parts}\n\n{message.body.rstrip()}\n{'=' * len(BANNER)}\n")
                self.stream.flush()
        return len(email_messages)


def site_url(request=None) -> str:
    """The scheme and host links in e-mails start with.

    KILN_PUBLIC_URL when set (so a forged Host header can never point a link elsewhere),
    else the host of the request (checked against ALLOWED_HOSTS by Django), else, from the
    command line, the address `make run` serves on."""
    if settings.KILN_PUBLIC_URL:
        return settings.KILN_PUBLIC_URL
    if request is not None:
        return request.build_absolute_uri("/").rstrip("/")
    return f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"


def send(template: str, context: dict, to: str) -> None:
    """Render ``accounts/email/<template>_subject.txt``, ``.txt`` and ``.html`` and send them to ``to``.

    Raises what the mailer raises (an SMTP error, a refused address): callers decide
    whether the person asking is told."""
    subject = " ".join(render_to_string(f"accounts/email/{template}_subject.txt", context).split())
    text = render_to_string(f"accounts/email/{template}.txt", context)
    html = render_to_string(f"accounts/email/{template}.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [to])
    message.attach_alternative(html, "text/html")
    message.send()
