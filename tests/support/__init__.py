"""What tests share: fixtures' helpers, fakes, samples, and the repository's root."""

from __future__ import annotations

from pathlib import Path

#: The repository's top level (pyproject.toml, schema.sql, examples/).
ROOT = Path(__file__).resolve().parents[2]
