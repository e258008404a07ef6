"""Server-rendered forms with a CSRF token bound to the session (WTForms), for every page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from wtforms import Form
from wtforms.csrf.session import SessionCSRF

__all__ = ["CsrfForm", "csrf_meta"]


def csrf_meta(secret_key: str, session: Any) -> dict[str, Any]:
    """The ``meta`` that binds a form's CSRF token to this session and the app's key."""
    return {"csrf_secret": secret_key.encode(), "csrf_context": session}


class CsrfForm(Form):
    """A form whose hidden ``csrf_token`` must come back with it (valid for 4 hours).

    Validators stay plain functions: quart-wtforms runs async validators with
    ``asyncio.gather``, which fails under trio, so WTForms is used directly.
    """

    class Meta:
        csrf = True
        csrf_class = SessionCSRF
        csrf_time_limit = timedelta(hours=4)
