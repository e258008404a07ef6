"""Where to go after logging in: only ever a path of this site. No I/O."""

from __future__ import annotations

__all__ = ["safe_next"]


def safe_next(target: str | None, default: str = "/users") -> str:
    """``target`` if it is a local path (``/users?page=2``), else ``default``.

    Refused: absolute URLs (``https://evil``), scheme-relative ones (``//evil``), the
    backslash forms browsers read as such (``/\\evil``), ``https:evil``, and anything
    with a control character.
    """
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if "\\" in target or any(ord(char) < 32 or ord(char) == 127 for char in target):
        return default
    return target  # a single leading "/": no scheme, no host
