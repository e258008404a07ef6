"""Email addresses: what counts as one, the one form it is stored (and shown) in, and the
one caseless key by which it is unique and looked up. No I/O.

Emails are unique case-insensitively, by Unicode's caseless matching: ``ß`` and ``SS``,
``ς`` and ``Σ``, ``ﬀ`` and ``FF`` are the same letters, though their lower cases differ
(Python's ``str.lower`` keeps ``ß``, ``ς`` and ``ﬀ``; PostgreSQL's ``lower()`` depends on the
database's locale, and only its newest versions can fold case). So the database never
folds: each row stores its address as :func:`stored_email` gives it (what is shown) and,
beside it, :func:`email_key` of it; the unique index is on the key, and every lookup
compares the key with :func:`email_key` of the input. Every caller (the web forms, the auth
API, the users file, the seeding, the log-in throttle) goes through these functions.
"""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email

__all__ = [
    "MAX_EMAIL_CHARS",
    "InvalidEmailError",
    "caseless",
    "email_forms",
    "email_key",
    "normalize_email",
    "stored_email",
]

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
    Then lower case and NFC, as :func:`stored_email` says.
    """
    text = raw.strip()
    if len(text) > MAX_EMAIL_CHARS:
        raise InvalidEmailError(f"An email address has at most {MAX_EMAIL_CHARS} characters.")
    try:
        valid = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmailError(str(exc)) from None
    return _fold(valid.normalized)


def stored_email(raw: str) -> str:
    """The form an address is stored and shown in.

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


def email_key(raw: str) -> str:
    """The caseless key an address is unique by and looked up by (a log-in, a
    registration, a change, the database's ``email_key`` column): :func:`caseless` of
    :func:`stored_email`, so the key of what was typed is the key of what was stored,
    stripped again (a compatibility form may start with a space: ``¨`` is a space and a
    combining diaeresis), so that a key's key is the key. :class:`InvalidEmailError` as
    :func:`stored_email`.
    """
    return _key(stored_email(raw))


def email_forms(raw: str) -> tuple[str, str]:
    """:func:`stored_email` and :func:`email_key` of ``raw`` at once (what a row stores),
    checked by email-validator once."""
    stored = stored_email(raw)
    return stored, _key(stored)


def caseless(text: str) -> str:
    """``text`` in the form in which text that differs in case only is equal: Unicode's
    compatibility caseless matching (The Unicode Standard, 3.13, D146:
    ``NFKD(casefold(NFKD(casefold(NFD(X)))))``), composed again (NFKC) to be stored.

    Full case folding, unlike lower case: ``ß`` and ``ẞ`` fold to ``ss``, the final sigma to
    the plain one, the long s to ``s``; and compatibility forms fold to their letters: the
    ligature ``ﬀ`` to ``ff``, a fullwidth X to ``x``. Its own result is its own key (tested).
    """
    folded = unicodedata.normalize("NFD", text).casefold()
    folded = unicodedata.normalize("NFKD", folded).casefold()
    return unicodedata.normalize("NFKC", folded)


def _key(stored: str) -> str:
    return caseless(stored).strip()


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text.lower())
