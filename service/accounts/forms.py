"""The accounts' forms (WTForms), each with a CSRF token bound to the session.

Validators are plain (synchronous) functions: quart-wtforms runs async validators with
``asyncio.gather``, which fails under trio, so WTForms is used directly.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from wtforms import BooleanField, EmailField, Form, HiddenField, PasswordField, StringField
from wtforms.csrf.session import SessionCSRF
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from .users_file import MAX_PASSWORD_CHARS, MAX_USERNAME_CHARS, MIN_PASSWORD_CHARS, valid_email

__all__ = ["DeleteForm", "EditForm", "LoginForm", "LogoutForm", "RegisterForm", "csrf_meta"]


def csrf_meta(secret_key: str, session: Any) -> dict[str, Any]:
    """The ``meta`` that binds a form's CSRF token to this session and the app's key."""
    return {"csrf_secret": secret_key.encode(), "csrf_context": session}


class _CsrfForm(Form):
    class Meta:
        csrf = True
        csrf_class = SessionCSRF
        csrf_time_limit = timedelta(hours=4)


def _email(_form: Form, field: Any) -> None:
    if not valid_email(field.data or ""):
        raise ValidationError("Enter an email address, like name@example.com.")


_PASSWORD = Length(
    min=MIN_PASSWORD_CHARS,
    max=MAX_PASSWORD_CHARS,
    message=f"Passwords have {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters.",
)
_USERNAME = Length(max=MAX_USERNAME_CHARS, message=f"At most {MAX_USERNAME_CHARS} characters.")


class LoginForm(_CsrfForm):
    email = EmailField("Email", [DataRequired(), _email])
    password = PasswordField("Password", [DataRequired()])
    next = HiddenField()


class RegisterForm(_CsrfForm):
    email = EmailField("Email", [DataRequired(), _email])
    username = StringField("Username", [Optional(), _USERNAME])
    password = PasswordField("Password", [DataRequired(), _PASSWORD])


class EditForm(_CsrfForm):
    email = EmailField("Email", [DataRequired(), _email])
    username = StringField("Username", [Optional(), _USERNAME])
    is_admin = BooleanField("Admin")
    current_password = PasswordField("Current password", [Optional()])
    new_password = PasswordField("New password", [Optional(), _PASSWORD])


class DeleteForm(_CsrfForm):
    """Only the CSRF token: the confirmation is the POST itself."""


class LogoutForm(_CsrfForm):
    """Only the CSRF token."""
