"""Users as a JSON file (``users fake`` writes one, ``users load`` reads one). No I/O here."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

import orjson

__all__ = ["NewUser", "UsersFileError", "dump_users", "parse_users", "valid_email"]

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MAX_EMAIL_CHARS = 254
MAX_USERNAME_CHARS = 150
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024
_KEYS = {"email": str, "username": str, "password": str, "is_admin": bool}


class UsersFileError(ValueError):
    """A users file that cannot be loaded; the message says where and why."""


@dataclass(frozen=True, slots=True)
class NewUser:
    """A user to create: the password in clear (it is hashed before it is stored)."""

    email: str
    username: str
    password: str
    is_admin: bool = False


def valid_email(email: str) -> bool:
    """A plausible address: one ``@``, a dot in the domain, no spaces, at most 254 chars."""
    return len(email) <= MAX_EMAIL_CHARS and _EMAIL.fullmatch(email) is not None


def dump_users(users: list[NewUser]) -> bytes:
    """The users as a JSON array of objects, indented for a person to read."""
    return orjson.dumps([asdict(user) for user in users], option=orjson.OPT_INDENT_2)


def parse_users(data: bytes) -> list[NewUser]:
    """Every user of a users file, or :class:`UsersFileError` for the first problem found.

    All or nothing: the whole file is checked before anything is loaded. Emails must be
    unique case-insensitively, within the file as in the database.
    """
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise UsersFileError(f"not JSON: {exc}") from None
    if not isinstance(document, list):
        raise UsersFileError(f"must be a JSON array of users, not {type(document).__name__}")
    users = [_user(entry, index) for index, entry in enumerate(document, start=1)]
    seen: dict[str, int] = {}
    for index, user in enumerate(users, start=1):
        first = seen.setdefault(user.email.lower(), index)
        if first != index:
            raise UsersFileError(f"user #{index}: email {user.email!r} repeats user #{first}'s")
    return users


def _user(entry: Any, index: int) -> NewUser:
    where = f"user #{index}"
    if not isinstance(entry, dict):
        raise UsersFileError(f"{where}: must be an object")
    for key, value in entry.items():
        expected = _KEYS.get(key)
        if expected is None:
            raise UsersFileError(f"{where}: unknown key {key!r} (known: {', '.join(_KEYS)})")
        if not isinstance(value, expected) or (expected is str and isinstance(value, bool)):
            raise UsersFileError(f"{where}: {key} must be a {expected.__name__}")
    for key in ("email", "password"):
        if key not in entry:
            raise UsersFileError(f"{where}: {key} is required")
    email, username, password = entry["email"], entry.get("username", ""), entry["password"]
    if not valid_email(email):
        raise UsersFileError(f"{where}: {email[:80]!r} is not an email address")
    if len(username) > MAX_USERNAME_CHARS or any(
        unicodedata.category(char) == "Cc" for char in username
    ):
        raise UsersFileError(
            f"{where}: username must be at most {MAX_USERNAME_CHARS} printable characters"
        )
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise UsersFileError(
            f"{where}: password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )
    return NewUser(email, username, password, entry.get("is_admin", False))
