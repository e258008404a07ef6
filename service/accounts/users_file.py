"""Users as a JSON file (``users fake`` writes one, ``users load`` reads one). No I/O here."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import orjson

from .emails import InvalidEmailError, email_key, normalize_email
from .rules import password_problem, username_problem

__all__ = ["NewUser", "UsersFileError", "dump_users", "parse_users"]

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
        first = seen.setdefault(email_key(user.email), index)
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
    try:
        normalize_email(email)
    except InvalidEmailError as exc:
        raise UsersFileError(f"{where}: {email[:80]!r} is not an email address ({exc})") from None
    problem = username_problem(username)
    if problem:
        raise UsersFileError(f"{where}: username must have {problem}")
    problem = password_problem(password)
    if problem:
        raise UsersFileError(f"{where}: password must have {problem}")
    return NewUser(email, username, password, entry.get("is_admin", False))
