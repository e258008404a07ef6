"""The image batch pipeline: ``python -m service images process SRC DST``. Walks a tree of
any size lazily, orients, rotates and shrinks each image in worker processes, calls a
remote service and hashes each, reports statistics, and records every finished image in a
journal so that a rerun resumes. See docs/image-pipeline.md."""

from .job import JobOptions as JobOptions
from .job import JobResult as JobResult
from .job import run_job as run_job
from .journal import Journal as Journal
from .journal import Record as Record
from .pipeline import Control as Control
from .pipeline import Stages as Stages
from .pipeline import run_pipeline as run_pipeline
from .walk import SyntheticTree as SyntheticTree
from .walk import walk_images as walk_images

__all__ = [
    "Control",
    "JobOptions",
    "JobResult",
    "Journal",
    "Record",
    "Stages",
    "SyntheticTree",
    "run_job",
    "run_pipeline",
    "walk_images",
]
