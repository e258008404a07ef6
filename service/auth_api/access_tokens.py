"""Access tokens: short-lived JWTs (HS256), verified without any database call. No I/O."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt

__all__ = ["AccessClaims", "AccessTokens", "InvalidAccessTokenError"]

ALGORITHM = "HS256"
#: The times a token carries are multiples of this (1/1024 s): binary fractions, exact in a
#: float and in JSON, so ``exp - iat`` is exactly the lifetime.
TICK_S = 1 / 1024


class InvalidAccessTokenError(Exception):
    """The token is missing, malformed, badly signed, from another issuer, or expired."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a valid access token says."""

    user_id: int
    issued_at: float
    expires_at: float


class AccessTokens:
    """Issues and verifies access tokens signed with ``secret``.

    A token carries ``sub`` (the user id as a string, as RFC 7519 wants), ``user_id``,
    ``iat``, ``exp`` and ``iss``. The times keep the fraction of a second (RFC 7519's
    NumericDate may have one; to :data:`TICK_S`, below the clock): with whole seconds a
    token issued late in a second died up to 1 s before the ``expires_in`` of its response
    said. Verifying checks the signature, the issuer and the expiry (``leeway_s``, 0 by
    default: the token lives exactly its lifetime; more only for clocks of several hosts
    apart) and nothing else: no database call, so a user deleted or logged out keeps
    access until the token expires, at most its lifetime.
    """

    def __init__(
        self,
        secret: str,
        *,
        issuer: str = "switchyard",
        leeway_s: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(secret.encode()) < 32:
            raise ValueError("the signing secret must have at least 32 bytes (HS256)")
        self._secret = secret
        self._issuer = issuer
        self._leeway_s = leeway_s
        self._clock = clock

    @staticmethod
    def seconds(lifetime_s: float) -> int:
        """The lifetime a token issued for ``lifetime_s`` gets (whole seconds, at least 1)."""
        return max(1, int(lifetime_s))

    def issue(self, user_id: int, lifetime_s: float) -> str:
        """A token for ``user_id`` that expires ``seconds(lifetime_s)`` from now: no earlier
        (but for the tick, under 1 ms) and no later."""
        now = math.floor(self._clock() / TICK_S) * TICK_S
        claims = {
            "sub": str(user_id),
            "user_id": user_id,
            "iat": now,
            "exp": now + self.seconds(lifetime_s),
            "iss": self._issuer,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> AccessClaims:
        """The claims of a valid token; :class:`InvalidAccessTokenError` otherwise."""
        try:
            # PyJWT checks the times against the wall clock; ours may be a test's: checked below.
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],  # never "none", never another algorithm
                issuer=self._issuer,
                options={
                    "require": ["sub", "iat", "exp", "iss"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidTokenError as exc:
            raise InvalidAccessTokenError(str(exc)) from None
        user_id, issued_at, expires_at = claims.get("user_id"), claims["iat"], claims["exp"]
        if type(user_id) is not int or claims["sub"] != str(user_id):
            raise InvalidAccessTokenError("the token names no user")
        if not (_is_time(expires_at) and _is_time(issued_at)):
            raise InvalidAccessTokenError("malformed times")
        now = self._clock()
        if now >= expires_at + self._leeway_s:  # RFC 7519 4.1.4: "on or after"
            raise InvalidAccessTokenError("the token has expired")
        if issued_at > now + self._leeway_s:
            raise InvalidAccessTokenError("the token is from the future")
        return AccessClaims(user_id, issued_at, expires_at)


def _is_time(value: object) -> bool:
    """A NumericDate: a finite number (of seconds), whole or not; never a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
