"""The key that signs session cookies: configured, or generated once and kept."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from .source_config import SettingsError

__all__ = ["ensure_secret_key"]

logger = logging.getLogger("service.platform.secret_key")


def ensure_secret_key(configured: str | None, data_dir: Path) -> str:
    """``SECRET_KEY`` if set; else the key kept in ``data_dir/secret_key``, made the first
    time (so sessions survive a restart), with a warning that it should be configured."""
    if configured:
        return configured
    path = data_dir / "secret_key"
    if path.is_file():
        key = path.read_text(encoding="utf-8").strip()
        if not key:  # a start that crashed mid-write: each worker would make its own key
            raise SettingsError(f"{path} is empty: delete it, or set SECRET_KEY")
        return key
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(key)
    logger.warning(
        "SECRET_KEY is not set: generated one and kept it in %s (set SECRET_KEY in production)",
        path,
    )
    return key
