"""Log lines without secrets: the service's log format, redacted as a whole (tracebacks too)."""

from __future__ import annotations

import logging

from .redact import redact_log_text

__all__ = ["LOG_FORMAT", "QUIET_LOGGERS", "RedactingFormatter"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"

#: Libraries whose INFO (or DEBUG) lines name every request's full URL: httpx writes
#: ``HTTP Request: GET <url>`` for each call, a source's password and API key included,
#: and httpcore traces every connection. Only their warnings are logged.
QUIET_LOGGERS = ("httpx", "httpcore")


class RedactingFormatter(logging.Formatter):
    """Formats a record as usual, then redacts the whole line (message, arguments and
    traceback alike) with :func:`~service.platform.redact.redact_log_text`: URLs and DSNs
    lose their userinfo and query values, password hashes and the statement arguments a
    driver's error quotes are replaced. A library that logs a URL, or an exception whose
    message holds one, cannot put its secret in the log."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_log_text(super().format(record))
