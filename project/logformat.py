"""``KILN_LOG_FORMAT=json``: one JSON object per log line, for hosts that ship logs to Loki or ELK.

Fields: ``time`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``, ``message``, ``process``
(the process's name: ``MainProcess``, ``ForkPoolWorker-2``…), ``pid``; ``request_id`` inside a web
request whose proxy sent ``X-Request-ID``; ``task_id`` and ``task`` inside a Celery task; ``exception``
(the formatted traceback) when the line carries one. The same formatter serves every process:
Django's ``LOGGING`` (web, management commands), Celery's worker and beat (their handlers get it
in project/celery.py) and gunicorn's own error and access logs (project/runtime/gunicorn.conf.py).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from datetime import UTC, datetime

from celery import current_task

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("kiln_request_id", default=None)

# What a proxy may send as a request id: nginx's $request_id (32 hex), a UUID, a short token.
# Anything else (a newline, a megabyte) is not logged.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.processName,
            "pid": record.process,
        }
        if (rid := request_id.get()) is not None:
            line["request_id"] = rid
        if current_task and current_task.request.id:
            line["task_id"], line["task"] = current_task.request.id, current_task.name
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def _request_started(sender, environ=None, scope=None, **kwargs) -> None:
    """From the moment Django takes a request until it is finished (a streamed body sent, Django's
    own "Not Found: …" line written after the middleware), its lines carry the proxy's
    ``X-Request-ID``, so they can be matched with the proxy's access line. Without the header, none."""
    if environ is not None:
        value = environ.get("HTTP_X_REQUEST_ID", "")
    else:
        value = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1") if scope else ""
    request_id.set(value if _REQUEST_ID.fullmatch(value) else None)


def _request_finished(sender, **kwargs) -> None:
    request_id.set(None)


def connect_request_id() -> None:
    from django.core.signals import request_finished, request_started

    request_started.connect(_request_started, dispatch_uid="kiln-request-id-started")
    request_finished.connect(_request_finished, dispatch_uid="kiln-request-id-finished")


def use_json_for_warnings() -> None:
    """With KILN_LOG_FORMAT=json, Python's warnings (a deprecation, Celery's "running as root") are
    log records too (logger ``py.warnings``), not free text between the JSON lines."""
    from django.conf import settings

    if settings.KILN_LOG_FORMAT == "json":
        logging.captureWarnings(True)
