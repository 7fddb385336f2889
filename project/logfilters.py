"""Logging filters named in ``settings.LOGGING``."""

import logging

from django.core.exceptions import PermissionDenied


class ForbiddenOnOneLine(logging.Filter):
    """A refused request is routine (a member opening a manager's page, an outsider's link):
    Django logs "Forbidden (Permission denied): /path" with the exception's full traceback,
    which buries real errors. Keep the line, drop the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], PermissionDenied):
            record.exc_info = None
            record.exc_text = None
        return True
