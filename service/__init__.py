"""A trio scatter-gather service: read several sources at once, each under a deadline."""

from .admission import AdmissionControl as AdmissionControl
from .admission import OverloadedError as OverloadedError
from .app import create_app as create_app
from .bulkhead import Bulkhead as Bulkhead
from .fanout import FanoutResult as FanoutResult
from .fanout import gather as gather
from .fanout import run_with_deadline as run_with_deadline
from .log_throttle import LogThrottle as LogThrottle
from .outcome import Outcome as Outcome
from .outcome import SourceReport as SourceReport
from .outcome import server_timing_header as server_timing_header
from .rows import InvalidRowsError as InvalidRowsError
from .rows import Row as Row
from .rows import merge_rows as merge_rows
from .rows import validate_rows as validate_rows
from .settings import Settings as Settings
from .settings import SettingsError as SettingsError
from .source import FakeSource as FakeSource
from .source import Source as Source
from .source import SourceBusyError as SourceBusyError

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
