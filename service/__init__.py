"""A trio scatter-gather service: read several sources at once, each under a deadline."""

from .app import create_app as create_app
from .fanout import FanoutResult as FanoutResult
from .fanout import gather as gather
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

__all__ = [
    "FakeSource",
    "FanoutResult",
    "InvalidRowsError",
    "Outcome",
    "Row",
    "Settings",
    "SettingsError",
    "Source",
    "SourceReport",
    "create_app",
    "gather",
    "merge_rows",
    "server_timing_header",
    "validate_rows",
]
