"""A trio scatter-gather service: read several sources at once, each under a deadline."""

from typing import Any

from .fanout.admission import AdmissionControl as AdmissionControl
from .fanout.admission import OverloadedError as OverloadedError
from .fanout.gather import FanoutResult as FanoutResult
from .fanout.gather import gather as gather
from .fanout.gather import run_with_deadline as run_with_deadline
from .fanout.outcome import Outcome as Outcome
from .fanout.outcome import SourceReport as SourceReport
from .fanout.outcome import server_timing_header as server_timing_header
from .fanout.rows import InvalidRowsError as InvalidRowsError
from .fanout.rows import Row as Row
from .fanout.rows import merge_rows as merge_rows
from .fanout.rows import validate_rows as validate_rows
from .fanout.source import FakeSource as FakeSource
from .fanout.source import Source as Source
from .fanout.source import SourceBusyError as SourceBusyError
from .platform.bulkhead import Bulkhead as Bulkhead
from .platform.log_throttle import LogThrottle as LogThrottle
from .platform.settings import Settings as Settings
from .platform.settings import SettingsError as SettingsError

__all__ = [
    "AdmissionControl",
    "Bulkhead",
    "FakeSource",
    "FanoutResult",
    "InvalidRowsError",
    "LogThrottle",
    "Outcome",
    "OverloadedError",
    "Row",
    "Settings",
    "SettingsError",
    "Source",
    "SourceBusyError",
    "SourceReport",
    "create_app",
    "gather",
    "merge_rows",
    "run_with_deadline",
    "server_timing_header",
    "validate_rows",
]


def __getattr__(name: str) -> Any:
    # The app factory imports every capability and the web stack: only on demand, so a
    # command-line job (the image pipeline's worker processes) does not pay for it.
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
