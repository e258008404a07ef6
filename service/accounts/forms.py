"""The accounts' forms (WTForms), each with a CSRF token bound to the session.

Validators are plain (synchronous) functions: quart-wtforms runs async validators with
``asyncio.gather``, which fails under trio, so WTForms is used directly.
"""

from __future__ import annotations

from typing import Any

from wtforms import BooleanField, EmailField, Form, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from ..platform.forms import CsrfForm, csrf_meta
from .users_file import MAX_PASSWORD_CHARS, MAX_USERNAME_CHARS, MIN_PASSWORD_CHARS, valid_email

__all__ = ["DeleteForm", "EditForm", "LoginForm", "LogoutForm", "RegisterForm", "csrf_meta"]


def _email(_form: Form, field: Any) -> None:
    if not valid_email(field.data or ""):
        raise ValidationError("Enter an email address, like name@example.com.")


_PASSWORD = Length(
    min=MIN_PASSWORD_CHARS,
    max=MAX_PASSWORD_CHARS,
    message=f"Passwords have {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters.",
)
_USERNAME = Length(max=MAX_USERNAME_CHARS, message=f"At most {MAX_USERNAME_CHARS} characters.")


class LoginForm(CsrfForm):
    email = EmailField("Email", [DataRequired(), _email])
    password = PasswordField("Password", [DataRequired()])
    next = HiddenField()


class RegisterForm(CsrfForm):
    email = EmailField("Email", [DataRequired(), _email])
    username = StringField("Username", [Optional(), _USERNAME])
    password = PasswordField("Password", [DataRequired(), _PASSWORD])


class EditForm(CsrfForm):
    email = EmailField("Email", [DataRequired(), _email])
    username = StringField("Username", [Optional(), _USERNAME])
    is_admin = BooleanField("Admin")
    current_password = PasswordField("Current password", [Optional()])
    new_password = PasswordField("New password", [Optional(), _PASSWORD])


class DeleteForm(CsrfForm):
    """Only the CSRF token: the confirmation is the POST itself."""


class LogoutForm(CsrfForm):
    """Only the CSRF token."""
