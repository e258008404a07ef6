"""Keeping secrets and runaway values out of log lines, error messages and answers. No I/O."""

from __future__ import annotations

import re
import reprlib
from urllib.parse import SplitResult, urlsplit

__all__ = ["MAX_VALUE_CHARS", "redact_log_text", "redact_text", "redact_url", "short_repr"]

#: The longest rendering of a foreign value (a bad row's id, say) in a message.
MAX_VALUE_CHARS = 80

# scheme://anything up to whitespace or a quote: URLs and DSNs (postgresql://user:pw@host/db).
# The lookbehind lets a scheme start only where a run of scheme characters starts, so a long
# run without "://" is scanned once, not once per character (linear, not quadratic, time).
_URL_IN_TEXT = re.compile(r"""(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>]+""")
# Punctuation that ends a match belongs to the sentence, not to the URL.
_TRAILING_PUNCTUATION = ").,;:!?"


def redact_url(url: str) -> str:
    """``url`` without its userinfo and with every query value replaced by ``***``.

    ``http://svc:pw@host:8080/x?api_key=k&a=1`` becomes
    ``http://host:8080/x?api_key=***&a=***``. A query pair without ``=`` is masked as
    a whole (``?<token>`` is how some APIs take a key). A fragment is dropped. Something
    that does not parse as a URL is replaced as a whole: it may still hold a secret.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparsable URL>"
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    query = "&".join(_masked(pair) for pair in parts.query.split("&"))
    return SplitResult(parts.scheme, netloc, parts.path, query if parts.query else "", "").geturl()


def _masked(pair: str) -> str:
    if not pair:
        return ""
    key, equals, _ = pair.partition("=")
    return f"{key}=***" if equals else "***"


def redact_text(text: str) -> str:
    """``text`` with every URL or DSN in it passed through :func:`redact_url`."""
    return _URL_IN_TEXT.sub(_redact_match, text)


def _redact_match(match: re.Match[str]) -> str:
    found = match.group(0)
    url = found.rstrip(_TRAILING_PUNCTUATION)
    return redact_url(url) + found[len(url) :]


# A password hash in PHC form ($argon2id$v=19$m=...,t=...,p=...$salt$hash; bcrypt's $2b$...):
# a hash is as good as the password to an offline guesser.
_PASSWORD_HASH = re.compile(r"\$(?:argon2(?:id|i|d)|2[abxy]?)\$[^\s'\"]*")
# asyncpg's message for an argument it cannot encode quotes the value (40 characters of it),
# and so may its reason: "invalid input for query argument $3: '<value>...' (<reason>)".
_ASYNCPG_ARGUMENT = re.compile(r"(invalid input for query argument \$\d+)[^\n]*")


def redact_log_text(text: str) -> str:
    """``text`` fit for a log: URLs and DSNs redacted (:func:`redact_text`), password hashes
    and the statement arguments a driver's message quotes replaced by placeholders."""
    text = _PASSWORD_HASH.sub("<password hash>", text)
    text = _ASYNCPG_ARGUMENT.sub(r"\1 (value and reason hidden)", text)
    return redact_text(text)


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 2, MAX_VALUE_CHARS, MAX_VALUE_CHARS
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 8


def short_repr(value: object) -> str:
    """A ``repr`` of ``value`` bounded in size (a foreign value may be huge), never raising."""
    try:
        text = _SHORT.repr(value)
    except Exception:  # a hostile __repr__
        return f"<{type(value).__name__}>"
    return text if len(text) <= MAX_VALUE_CHARS else f"{text[: MAX_VALUE_CHARS - 3]}..."
