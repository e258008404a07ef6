"""Static files the pages use, from pip-installed packages (no CDN: the pages render offline)."""

from __future__ import annotations

from importlib.metadata import distribution

__all__ = ["BOOTSTRAP_DIR"]

#: Bootstrap 5 (css/, js/) as the bootstrap-flask wheel ships it. Located through the
#: distribution's metadata, so its Flask-based Python package is never imported.
BOOTSTRAP_DIR = str(
    distribution("bootstrap-flask").locate_file("flask_bootstrap/static/bootstrap5")
)
