"""What the auth API's endpoints take and give, for the OpenAPI document (with examples)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..accounts.directory import PASSWORD_RULE, USERNAME_RULE

__all__ = [
    "ApiErrorBody",
    "Credentials",
    "LoggedOut",
    "Me",
    "MeChange",
    "RefreshBody",
    "Registered",
    "Registration",
    "TokenPair",
]

_EMAIL = Field(
    examples=["user@example.com"],
    description=(
        "Unique case-insensitively, by Unicode's caseless matching (so `ß` and `SS`, `ς` and"
        " `Σ`, `ﬀ` and `FF` are the same letters): stored without surrounding whitespace, in"
        " lower case."
    ),
)
_PASSWORD = Field(examples=["correct horse"], description=f"{PASSWORD_RULE.capitalize()}.")
_USERNAME_RULE = f"{USERNAME_RULE.capitalize()}."
_REFRESH = Field(examples=["3b241101-e2bb-4255-8caf-4136c566a962"], description="A UUID4.")


class Registration(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = _EMAIL
    password: str = _PASSWORD
    username: str = Field("", examples=["John Smith"], description=_USERNAME_RULE)


class Registered(BaseModel):
    id: int = Field(examples=[1])
    email: str = _EMAIL


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = _EMAIL
    password: str = _PASSWORD


class TokenPair(BaseModel):
    access_token: str = Field(
        examples=["eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.signature"],
        description="A JWT (HS256), valid 30 s by default: send it as `Authorization: Bearer`.",
    )
    token_type: Literal["Bearer"] = Field(
        examples=["Bearer"], description="How to send the access token (RFC 6750)."
    )
    expires_in: int = Field(
        examples=[30], description="The access token's lifetime, in seconds (RFC 6749 5.1)."
    )
    refresh_token: str = Field(
        examples=["3b241101-e2bb-4255-8caf-4136c566a962"],
        description="Single use, valid 30 days by default: trade it for a new pair.",
    )


class RefreshBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: str = _REFRESH


class LoggedOut(BaseModel):
    success: str = Field(examples=["User logged out."])


class Me(BaseModel):
    id: int = Field(examples=[1])
    username: str = Field(examples=[""])
    email: str = _EMAIL
    tasks_created: int | None = Field(
        None, examples=[3], description="Tasks the user ever created (the task API's counter)."
    )


class MeChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str | None = Field(None, examples=["John Smith"], description=_USERNAME_RULE)
    email: str | None = Field(None, examples=["new@example.com"])


class ApiErrorBody(BaseModel):
    error: str = Field(examples=["invalid"], description="A code a program can branch on.")
    detail: str = Field(examples=[f"password: {PASSWORD_RULE}"])
