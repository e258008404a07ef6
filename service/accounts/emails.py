"""Email addresses: what counts as one, and the one form in which it is stored and looked up.
No I/O.

Emails are unique case-insensitively. Python's ``str.lower`` and PostgreSQL's ``lower()``
disagree outside ASCII (``İ``, a final ``Σ``; the database's depends on its locale), so the
database never lowers: every address is stored as :func:`email_key` gives it, the unique
index is on the stored column, and every lookup compares with :func:`email_key` of the
input. Every caller (the web forms, the auth API, the users file, the seeding) goes through
these two functions.
"""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email

__all__ = ["MAX_EMAIL_CHARS", "InvalidEmailError", "email_key", "normalize_email"]

MAX_EMAIL_CHARS = 254


class InvalidEmailError(ValueError):
    """Not an email address; the message says why (email-validator's words)."""


def normalize_email(raw: str) -> str:
    """A new address (registration, a change, a users file) in its stored form, or
    :class:`InvalidEmailError`.

    Surrounding whitespace is dropped; the rest must be an address by email-validator's
    rules, without a deliverability (DNS) check: no control, format or other unsafe
    characters, no quoted local part, no IP literal, and no special-use domain
    (``localhost``, ``.test``, ``.local``, ``.invalid``...: use ``example.com`` in tests).
    Then the form of :func:`email_key`.
    """
    text = raw.strip()
    if len(text) > MAX_EMAIL_CHARS:
        raise InvalidEmailError(f"An email address has at most {MAX_EMAIL_CHARS} characters.")
    try:
        valid = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmailError(str(exc)) from None
    return _fold(valid.normalized)


def email_key(raw: str) -> str:
    """The form an address is stored in and looked up by (a log-in, the database's rows).

    For an address :func:`normalize_email` accepts, its result: surrounding whitespace
    dropped, the domain in IDNA's normal form, then lower case by Python's rules and
    Unicode NFC. Other text (a mistyped log-in, or an address stored before email-validator
    checked them) is only stripped, lowered and NFC-normalised, so it can still be found.
    :class:`InvalidEmailError` for characters no address has: control characters (NUL
    included) and lone surrogates, which the database could not even compare.
    """
    text = raw.strip()
    bad = next((c for c in text if unicodedata.category(c) in {"Cc", "Cs"}), None)
    if bad is not None:
        raise InvalidEmailError(
            f"The email address contains a control character or a lone surrogate: U+{ord(bad):04X}."
        )
    try:
        return normalize_email(text)
    except InvalidEmailError:
        return _fold(text)


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text.lower())
