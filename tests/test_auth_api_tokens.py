"""The auth API's token rules, on a controllable clock and an in-memory store."""

from __future__ import annotations

import jwt
import pytest
import trio

from service.auth_api.access_tokens import AccessTokens, InvalidAccessTokenError
from service.auth_api.refresh_tokens import (
    InMemoryRefreshStore,
    InvalidRefreshTokenError,
    RefreshTokenReusedError,
    RefreshTokens,
    hash_refresh_token,
)

SECRET = "s" * 40
DAY = 24 * 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def claims(**changes: object) -> dict[str, object]:
    return {"sub": "7", "user_id": 7, "iat": 1, "exp": 2**40, "iss": "fanout-service"} | changes


def test_an_access_token_carries_its_user_and_times() -> None:
    clock = Clock()
    tokens = AccessTokens(SECRET, clock=clock)
    claims = tokens.verify(tokens.issue(7, 30))
    assert (claims.user_id, claims.expires_at - claims.issued_at) == (7, 30)
    # Read back without our checks (PyJWT would check the times against the wall clock).
    raw = jwt.decode(tokens.issue(7, 30), options={"verify_signature": False})
    assert (raw["sub"], raw["user_id"], raw["iss"]) == ("7", 7, "fanout-service")


def test_an_access_token_expires_after_its_lifetime_with_a_small_leeway() -> None:
    clock = Clock()
    tokens = AccessTokens(SECRET, leeway_s=5, clock=clock)
    token = tokens.issue(7, 30)
    clock.now += 35  # 30 s, plus the leeway
    assert tokens.verify(token).user_id == 7
    clock.now += 0.5
    with pytest.raises(InvalidAccessTokenError, match="expired"):
        tokens.verify(token)


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature broken
        lambda t: AccessTokens("o" * 40).issue(7, 30),  # another secret
        lambda t: AccessTokens(SECRET, issuer="someone-else").issue(7, 30),
        lambda t: jwt.encode(
            {"sub": "7", "user_id": 7, "iat": 1, "exp": 2**40, "iss": "fanout-service"},
            key=None,
            algorithm="none",
        ),
        lambda t: jwt.encode(
            {"user_id": 7, "iat": 1, "exp": 2**40, "iss": "fanout-service"}, SECRET
        ),
        lambda t: jwt.encode(
            {"sub": "8", "user_id": 7, "iat": 1, "exp": 2**40, "iss": "fanout-service"}, SECRET
        ),
        lambda t: "not a token",
    ],
)
def test_a_forged_or_foreign_token_is_refused(forge: object) -> None:
    tokens = AccessTokens(SECRET, clock=Clock())
    with pytest.raises(InvalidAccessTokenError):
        tokens.verify(forge(tokens.issue(7, 30)))  # type: ignore[operator]


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        AccessTokens("short")


async def test_refresh_rotates_single_use_and_keeps_only_hashes() -> None:
    store = InMemoryRefreshStore()
    refresh = RefreshTokens(store, clock=Clock())
    first = await refresh.issue(7, 30 * DAY)
    assert hash_refresh_token(first) in store.records
    assert all(first not in key for key in store.records)  # only the hash is stored
    user_id, second = await refresh.rotate(first, 30 * DAY)
    assert user_id == 7
    assert second != first
    user_id, _third = await refresh.rotate(second, 30 * DAY)
    assert user_id == 7


async def test_a_reused_token_revokes_the_whole_family() -> None:
    store = InMemoryRefreshStore()
    refresh = RefreshTokens(store, clock=Clock())
    stolen = await refresh.issue(7, 30 * DAY)
    other_login = await refresh.issue(7, 30 * DAY)
    _, current = await refresh.rotate(stolen, 30 * DAY)  # the owner rotates
    with pytest.raises(RefreshTokenReusedError):
        await refresh.rotate(stolen, 30 * DAY)  # the thief replays the old one
    with pytest.raises(InvalidRefreshTokenError):
        await refresh.rotate(current, 30 * DAY)  # the owner's current one is revoked too
    assert (await refresh.rotate(other_login, 30 * DAY))[0] == 7  # another log-in is not


async def test_a_refresh_token_expires_and_expired_ones_are_purged() -> None:
    clock = Clock()
    refresh = RefreshTokens(InMemoryRefreshStore(), clock=clock)
    token = await refresh.issue(7, 30 * DAY)
    clock.now += 30 * DAY - 1
    _, fresh = await refresh.rotate(token, 30 * DAY)
    clock.now += 30 * DAY
    with pytest.raises(InvalidRefreshTokenError, match="expired"):
        await refresh.rotate(fresh, 30 * DAY)
    assert await refresh.purge_expired() == 2


async def test_of_two_concurrent_refreshes_exactly_one_succeeds_and_nothing_is_revoked() -> None:
    store = InMemoryRefreshStore()
    refresh = RefreshTokens(store, clock=Clock())
    token = await refresh.issue(7, 30 * DAY)
    won: list[str] = []
    refused: list[Exception] = []

    async def use() -> None:
        await trio.lowlevel.checkpoint()
        try:
            won.append((await refresh.rotate(token, 30 * DAY))[1])
        except InvalidRefreshTokenError as exc:
            refused.append(exc)

    original_spend = store.spend

    async def slow_spend(token_hash: str) -> bool:
        await trio.sleep(0.01)  # both have read the record before either spends it
        return await original_spend(token_hash)

    store.spend = slow_spend  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(use)
        nursery.start_soon(use)
    assert len(won) == 1
    assert len(refused) == 1
    assert not isinstance(refused[0], RefreshTokenReusedError)
    assert (await refresh.rotate(won[0], 30 * DAY))[0] == 7  # the winner's pair works


async def test_logout_revokes_and_garbage_is_refused() -> None:
    refresh = RefreshTokens(InMemoryRefreshStore(), clock=Clock())
    token = await refresh.issue(7, 30 * DAY)
    assert await refresh.revoke(token) == 7
    with pytest.raises(InvalidRefreshTokenError):
        await refresh.rotate(token, 30 * DAY)
    for garbage in ("", "nope", "00000000-0000-0000-0000-000000000000"):
        with pytest.raises(InvalidRefreshTokenError):
            await refresh.rotate(garbage, 30 * DAY)
