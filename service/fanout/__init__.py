"""The fan-out capability: ``GET /data`` reads every source at once, each under its own
deadline, and answers with one list sorted by id (see docs/fanout.md)."""

from .gather import FanoutResult as FanoutResult
from .gather import gather as gather
from .gather import run_with_deadline as run_with_deadline

__all__ = ["FanoutResult", "gather", "run_with_deadline"]
