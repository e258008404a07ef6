"""How each source ended, and how that is reported (log line and Server-Timing)."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from ..platform.redact import redact_text

__all__ = ["MAX_ERROR_CHARS", "Outcome", "SourceReport", "server_timing_header"]

#: The longest error message a report keeps: it goes into log lines and answers.
MAX_ERROR_CHARS = 300


class Outcome(enum.Enum):
    """The ways a source's part of one fan-out can end."""

    OK = "ok"
    TIMEOUT = "timeout"
    ERROR = "error"
    INVALID = "invalid"
    BUSY = "busy"  # not tried: the source already had as many reads in flight as it can take


@dataclass(frozen=True, slots=True)
class SourceReport:
    """What happened to one source in one fan-out."""

    source: str
    outcome: Outcome
    elapsed_ms: float
    rows: int = 0
    error_type: str | None = None
    error: str | None = None

    @classmethod
    def of(
        cls,
        source: str,
        outcome: Outcome,
        elapsed_ms: float,
        *,
        rows: int = 0,
        error: BaseException | None = None,
    ) -> SourceReport:
        """A report, with the error (if any) reduced to its type name and message.

        The message is made safe to log and to answer: URLs and DSNs in it lose their
        userinfo and query values, and it is cut to :data:`MAX_ERROR_CHARS`.
        """
        return cls(
            source=source,
            outcome=outcome,
            elapsed_ms=elapsed_ms,
            rows=rows,
            error_type=type(error).__name__ if error is not None else None,
            error=_safe_message(error) if error is not None else None,
        )

    @property
    def failed(self) -> bool:
        """True when the source contributed nothing."""
        return self.outcome is not Outcome.OK


def _safe_message(error: BaseException) -> str:
    try:
        message = str(error)
    except Exception:  # a hostile __str__
        return f"<unprintable {type(error).__name__}>"
    # Redacted before it is cut: a URL across the cut would otherwise not parse as one.
    message = redact_text(message)
    if len(message) <= MAX_ERROR_CHARS:
        return message
    return f"{message[: MAX_ERROR_CHARS - 3]}..."


def server_timing_header(reports: Iterable[SourceReport]) -> str:
    """Format reports as a W3C ``Server-Timing`` value, one entry per source.

    Example: ``data_1;dur=3.1;desc="ok", data_2;dur=2000.4;desc="timeout"``.
    """
    return ", ".join(
        f'{report.source};dur={report.elapsed_ms:.1f};desc="{report.outcome.value}"'
        for report in reports
    )
