"""Shared by several tests (from tests/system/test_bad_input_app.py)."""

from __future__ import annotations

import re


def form_error(page: str) -> list[str]:
    """The form errors a page shows (Bootstrap's ``invalid-feedback``)."""
    return re.findall(r'class="invalid-feedback[^"]*">\s*([^<]+?)\s*<', page)
