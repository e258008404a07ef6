"""Server-rendered forms with a CSRF token bound to the session (WTForms), for every page,
and the parser of their bodies, which tells bytes that are not UTF-8 from text."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

from quart.formparser import FormDataParser, ParserFunc
from quart_trio.formparser import TrioFormDataParser
from werkzeug.datastructures import MultiDict
from wtforms import Form
from wtforms.csrf.session import SessionCSRF

__all__ = ["NOT_TEXT", "CsrfForm", "FormData", "TextFormDataParser", "csrf_meta"]

#: The form error of a field whose bytes were not UTF-8.
NOT_TEXT = "Not valid text: the browser sent bytes that are not UTF-8."


def csrf_meta(secret_key: str, session: Any) -> dict[str, Any]:
    """The ``meta`` that binds a form's CSRF token to this session and the app's key."""
    return {"csrf_secret": secret_key.encode(), "csrf_context": session}


class FormData(MultiDict[str, str]):
    """A form's fields, and the names of those whose bytes were not UTF-8 (their values
    hold U+FFFD in place of those bytes, so they can still be shown)."""

    undecodable: frozenset[str] = frozenset()


class TextFormDataParser(TrioFormDataParser):
    """quart-trio's form parser, except that an url-encoded field that is not UTF-8 is named in
    :attr:`FormData.undecodable` instead of silently getting U+FFFD (quart decodes with
    ``errors="replace"``, so ``%ED%A0%80``, a lone surrogate's bytes, became a valid-looking
    value). :class:`CsrfForm` turns those names into form errors."""

    async def _parse_urlencoded(
        self: FormDataParser,
        body: Any,
        mimetype: str,
        content_length: int | None,
        options: dict[str, str],
    ) -> tuple[MultiDict[Any, Any], MultiDict[Any, Any]]:
        raw: bytes = await body
        pairs = parse_qsl(
            raw.decode("utf-8", "surrogateescape"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="surrogateescape",
        )
        fields, undecodable = [], set()
        for name, value in pairs:
            text_name, text_value = _replaced(name), _replaced(value)
            if text_value != value or text_name != name:
                undecodable.add(text_name)
            fields.append((text_name, text_value))
        form = FormData(fields)
        form.undecodable = frozenset(undecodable)
        return form, MultiDict()

    parse_functions: dict[str, ParserFunc] = {  # noqa: RUF012 (the base class's attribute)
        **FormDataParser.parse_functions,
        "application/x-www-form-urlencoded": _parse_urlencoded,
        "application/x-url-encoded": _parse_urlencoded,
    }


def _replaced(text: str) -> str:
    """``text`` with each byte that was not UTF-8 (a surrogate escape) as U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class CsrfForm(Form):
    """A form whose hidden ``csrf_token`` must come back with it (valid for 4 hours).

    A field whose bytes were not UTF-8 (see :class:`TextFormDataParser`) fails validation
    with :data:`NOT_TEXT`.

    Validators stay plain functions: quart-wtforms runs async validators with
    ``asyncio.gather``, which fails under trio, so WTForms is used directly.
    """

    class Meta:
        csrf = True
        csrf_class = SessionCSRF
        csrf_time_limit = timedelta(hours=4)

    def __init__(self, formdata: Any = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(formdata, *args, **kwargs)
        self._undecodable: frozenset[str] = getattr(formdata, "undecodable", frozenset())

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        for field in self:
            if field.name in self._undecodable:
                field.errors = [*field.errors, NOT_TEXT]
                valid = False
        return valid
