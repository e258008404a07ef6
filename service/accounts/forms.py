"""The accounts' forms (WTForms), each with a CSRF token bound to the session.

Validators are plain (synchronous) functions: quart-wtforms runs async validators with
``asyncio.gather``, which fails under trio, so WTForms is used directly.
"""

from __future__ import annotations

from typing import Any

from wtforms import BooleanField, EmailField, Form, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, InputRequired, Optional, ValidationError

from ..platform.forms import CsrfForm, csrf_meta
from .emails import InvalidEmailError, email_key, normalize_email
from .rules import PASSWORD_RULE as _RULE
from .rules import password_problem, username_problem

__all__ = [
    "PASSWORD_RULE",
    "DeleteForm",
    "EditForm",
    "LoginForm",
    "LogoutForm",
    "RegisterForm",
    "csrf_meta",
]

#: The password rule as the forms state it, under their password fields.
PASSWORD_RULE = f"{_RULE[0].upper()}{_RULE[1:]}."


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


def _password(_form: Form, field: Any) -> None:
    """A new password (register, edit): the rule of every path (see ``rules``)."""
    problem = password_problem(field.data or "")
    if problem:
        raise ValidationError(f"Passwords have {problem}.")


class LoginForm(CsrfForm):
    email = EmailField("Email", [DataRequired(), _login_email])
    password = PasswordField("Password", [InputRequired()])  # spaces too: see RegisterForm
    next = HiddenField()


class RegisterForm(CsrfForm):
    email = EmailField("Email", [DataRequired(), _email])
    username = StringField("Username", [_username])
    # InputRequired, not DataRequired: spaces are characters of a password like any other.
    password = PasswordField("Password", [InputRequired(), _password], description=PASSWORD_RULE)


class EditForm(CsrfForm):
    email = EmailField("Email", [DataRequired(), _email])
    username = StringField("Username", [_username])
    is_admin = BooleanField("Admin")
    current_password = PasswordField("Current password", [Optional()])
    # Only an empty field means "no change": spaces are a new password, held to the rule.
    new_password = PasswordField(
        "New password", [Optional(strip_whitespace=False), _password], description=PASSWORD_RULE
    )


class DeleteForm(CsrfForm):
    """Only the CSRF token: the confirmation is the POST itself."""


class LogoutForm(CsrfForm):
    """Only the CSRF token."""
