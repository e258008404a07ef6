"""What a username and a password may be: one rule each, in one place, and the words that
state it. Every path that takes one goes through here: the web's register and edit forms,
the auth API (register, ``PUT /api/me/``), a users file, the seeding's ``ADMIN_PASSWORD``.
No I/O. (Emails have their own module: ``emails``.)
"""

from __future__ import annotations

import unicodedata

__all__ = [
    "MAX_PASSWORD_CHARS",
    "MAX_USERNAME_CHARS",
    "MIN_PASSWORD_CHARS",
    "PASSWORD_RULE",
    "USERNAME_RULE",
    "password_problem",
    "username_problem",
]

MAX_USERNAME_CHARS = 150
#: Passwords are counted in characters (code points), as a person counts them, never in
#: bytes: 1,024 characters of 4-byte UTF-8 are 4 KiB, which argon2 hashes as easily.
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024

PASSWORD_RULE = f"{MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS:,} characters"
USERNAME_RULE = (
    f"at most {MAX_USERNAME_CHARS} characters, none of them a control, invisible formatting,"
    " private-use, unassigned or line-breaking character"
)

#: Unicode's general categories a username never holds: control (Cc), format (Cf: U+202E
#: RIGHT-TO-LEFT OVERRIDE turns the text around it, U+200B and U+FEFF are invisible),
#: surrogate (Cs), private use (Co), unassigned (Cn, by this Python's Unicode version), and
#: the line and paragraph separators (Zl, Zp), which break a line wherever a name is shown.
_NOT_IN_USERNAMES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def username_problem(username: str) -> str | None:
    """Why ``username`` cannot be one (:data:`USERNAME_RULE`, and the first character that
    breaks it: the answer reads after "have"), or ``None``. Letters of every script, marks,
    digits, punctuation, symbols, emoji and spaces are fine."""
    if len(username) > MAX_USERNAME_CHARS:
        return f"{USERNAME_RULE} (this one has {len(username)})"
    bad = next((c for c in username if unicodedata.category(c) in _NOT_IN_USERNAMES), None)
    if bad is not None:
        return f"{USERNAME_RULE} (found U+{ord(bad):04X})"
    return None


def password_problem(password: str) -> str | None:
    """Why ``password`` cannot be one (:data:`PASSWORD_RULE`, or text no UTF-8 can carry:
    a lone surrogate), or ``None``. Any other character is fine.

    Like :func:`username_problem`'s, the answer reads after "have" ("Passwords have ...").
    """
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        return PASSWORD_RULE
    if any(unicodedata.category(c) == "Cs" for c in password):
        return "only valid text (no lone surrogate)"
    return None
