"""The accounts' forms (WTForms), each with a CSRF token bound to the session.

Validators are plain (synchronous) functions: quart-wtforms runs async validators with
``asyncio.gather``, which fails under trio, so WTForms is used directly.
"""

from __future__ import annotations

from typing import Any

from wtforms import BooleanField, EmailField, Form, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from ..platform.forms import CsrfForm, csrf_meta
from .emails import InvalidEmailError, email_key, normalize_email
from .users_file import (
    MAX_PASSWORD_CHARS,
    MIN_PASSWORD_CHARS,
    username_problem,
)

__all__ = [
    "PASSWORD_RULE",
    "DeleteForm",
    "EditForm",
    "LoginForm",
    "LogoutForm",
    "RegisterForm",
    "csrf_meta",
]


def _email(_form: Form, field: Any) -> None:
    """A new address (register, edit): email-validator's rules (see ``emails``)."""
    try:
        normalize_email(field.data or "")
    except InvalidEmailError as exc:
        raise ValidationError(f"Enter an email address, like name@example.com. {exc}") from None


def _login_email(_form: Form, field: Any) -> None:
    """Any text that could be a stored address (a wrong one is "wrong email or password")."""
    try:
        email_key(field.data or "")
    except InvalidEmailError as exc:
        raise ValidationError(f"Enter an email address, like name@example.com. {exc}") from None


def _username(_form: Form, field: Any) -> None:
    problem = username_problem(field.data or "")
    if problem:
        raise ValidationError(f"Usernames have {problem}.")


#: The password rule as the forms state it, under their password fields.
PASSWORD_RULE = f"{MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters."

_PASSWORD = Length(
    min=MIN_PASSWORD_CHARS,
    max=MAX_PASSWORD_CHARS,
    message=f"Passwords have {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters.",
)


class LoginForm(CsrfForm):
    email = EmailField("Email", [DataRequired(), _login_email])
    password = PasswordField("Password", [DataRequired()])
    next = HiddenField()


class RegisterForm(CsrfForm):
    email = EmailField("Email", [DataRequired(), _email])
    username = StringField("Username", [_username])
    password = PasswordField("Password", [DataRequired(), _PASSWORD], description=PASSWORD_RULE)


class EditForm(CsrfForm):
    email = EmailField("Email", [DataRequired(), _email])
    username = StringField("Username", [_username])
    is_admin = BooleanField("Admin")
    current_password = PasswordField("Current password", [Optional()])
    new_password = PasswordField("New password", [Optional(), _PASSWORD], description=PASSWORD_RULE)


class DeleteForm(CsrfForm):
    """Only the CSRF token: the confirmation is the POST itself."""


class LogoutForm(CsrfForm):
    """Only the CSRF token."""
