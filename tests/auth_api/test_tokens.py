"""The auth API's token rules, on a controllable clock and an in-memory store."""

from __future__ import annotations

import contextlib

import jwt
import pytest
import trio
import trio.testing

from service.auth_api.access_tokens import AccessTokens, InvalidAccessTokenError
from service.auth_api.refresh_tokens import (
    InMemoryRefreshStore,
    InvalidRefreshTokenError,
    RefreshRecord,
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
    return {"sub": "7", "user_id": 7, "iat": 1, "exp": 2**40, "iss": "switchyard"} | changes


def test_an_access_token_carries_its_user_and_times() -> None:
    clock = Clock()
    tokens = AccessTokens(SECRET, clock=clock)
    claims = tokens.verify(tokens.issue(7, 30))
    assert (claims.user_id, claims.expires_at - claims.issued_at) == (7, 30)
    # Read back without our checks (PyJWT would check the times against the wall clock).
    raw = jwt.decode(tokens.issue(7, 30), options={"verify_signature": False})
    assert (raw["sub"], raw["user_id"], raw["iss"]) == ("7", 7, "switchyard")


@pytest.mark.parametrize("leeway_s", [None, 0, 5])
def test_an_access_token_lives_exactly_its_lifetime_plus_a_leeway_of_0_by_default(
    leeway_s: float | None,
) -> None:
    clock = Clock()
    if leeway_s is None:
        tokens = AccessTokens(SECRET, clock=clock)  # the default
    else:
        tokens = AccessTokens(SECRET, clock=clock, leeway_s=leeway_s)
    token = tokens.issue(7, 30)
    clock.now += 30 + (leeway_s or 0) - 1  # lifetime (+ leeway) - 1 s: accepted
    assert tokens.verify(token).user_id == 7
    clock.now += 2  # lifetime (+ leeway) + 1 s: refused
    with pytest.raises(InvalidAccessTokenError, match="expired"):
        tokens.verify(token)


@pytest.mark.parametrize("fraction_s", [0.0, 0.3, 0.999])
@pytest.mark.parametrize("lifetime_s", [30.0, 30.7])
def test_an_access_token_lives_the_expires_in_it_is_issued_with_whatever_the_fraction_of_a_second(
    fraction_s: float, lifetime_s: float
) -> None:
    """Issued at t (late in its second, too): still accepted at t + expires_in - 2 ms, refused
    from t + lifetime on (no leeway). Whole-second times made it die up to 1 s early."""
    clock = Clock()
    clock.now += fraction_s
    issued_at = clock.now
    tokens = AccessTokens(SECRET, clock=clock)
    token = tokens.issue(7, lifetime_s)
    expires_in = tokens.seconds(lifetime_s)  # what the token response says
    assert expires_in == 30
    clock.now = issued_at + expires_in - 0.002
    claims = tokens.verify(token)
    assert claims.user_id == 7
    assert claims.expires_at - claims.issued_at == expires_in  # exactly
    assert issued_at - 0.001 < claims.issued_at <= issued_at
    clock.now = issued_at + lifetime_s
    with pytest.raises(InvalidAccessTokenError, match="expired"):
        tokens.verify(token)


@pytest.mark.parametrize(
    "time_claim",
    [{"exp": float("nan")}, {"exp": float("inf")}, {"iat": float("-inf")}, {"exp": True}],
)
def test_an_access_token_with_times_that_are_no_numbers_is_refused(
    time_claim: dict[str, object],
) -> None:
    tokens = AccessTokens(SECRET, clock=Clock())
    with pytest.raises(InvalidAccessTokenError, match="malformed times"):
        tokens.verify(jwt.encode(claims(**time_claim), SECRET))


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature broken
        lambda t: AccessTokens("o" * 40).issue(7, 30),  # another secret
        lambda t: AccessTokens(SECRET, issuer="someone-else").issue(7, 30),
        lambda t: jwt.encode(
            {"sub": "7", "user_id": 7, "iat": 1, "exp": 2**40, "iss": "switchyard"},
            key=None,
            algorithm="none",
        ),
        lambda t: jwt.encode({"user_id": 7, "iat": 1, "exp": 2**40, "iss": "switchyard"}, SECRET),
        lambda t: jwt.encode(
            {"sub": "8", "user_id": 7, "iat": 1, "exp": 2**40, "iss": "switchyard"}, SECRET
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
    clock = Clock()
    refresh = RefreshTokens(store, clock=clock)
    stolen = await refresh.issue(7, 30 * DAY)
    other_login = await refresh.issue(7, 30 * DAY)
    _, current = await refresh.rotate(stolen, 30 * DAY)  # the owner rotates
    clock.now += 60  # past the grace window
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


async def test_of_four_concurrent_refreshes_exactly_one_wins_and_nothing_is_revoked(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Each step holds the family for 10 ms (a database's round trips): the others queue.
    store = InMemoryRefreshStore(step_latency_s=0.01)
    refresh = RefreshTokens(store, clock=trio.current_time)
    token = await refresh.issue(7, 30 * DAY)
    won: list[str] = []
    refused: list[Exception] = []

    async def use() -> None:
        try:
            won.append((await refresh.rotate(token, 30 * DAY))[1])
        except InvalidRefreshTokenError as exc:
            refused.append(exc)

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(use)
    assert len(won) == 1
    assert len(refused) == 3
    assert not any(isinstance(exc, RefreshTokenReusedError) for exc in refused)
    assert (await refresh.rotate(won[0], 30 * DAY))[0] == 7  # the winner's pair works


async def test_a_spent_token_within_the_grace_window_revokes_nothing_and_later_revokes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    refresh = RefreshTokens(InMemoryRefreshStore(), clock=trio.current_time, reuse_grace_s=5)
    first = await refresh.issue(7, 30 * DAY)
    _, second = await refresh.rotate(first, 30 * DAY)
    await trio.sleep(4)  # within the grace window: a loser of a race
    with pytest.raises(InvalidRefreshTokenError) as within:
        await refresh.rotate(first, 30 * DAY)
    assert not isinstance(within.value, RefreshTokenReusedError)
    _, third = await refresh.rotate(second, 30 * DAY)  # the winner's pair still works
    await trio.sleep(2)  # 6 s after the first was spent: reuse
    with pytest.raises(RefreshTokenReusedError):
        await refresh.rotate(first, 30 * DAY)
    with pytest.raises(InvalidRefreshTokenError):
        await refresh.rotate(third, 30 * DAY)  # the whole family went


@pytest.mark.parametrize("logout_first", [False, True])
async def test_refresh_racing_logout_leaves_no_live_token(
    autojump_clock: trio.testing.MockClock, logout_first: bool
) -> None:
    store = InMemoryRefreshStore(step_latency_s=0.01)
    refresh = RefreshTokens(store, clock=trio.current_time)
    token = await refresh.issue(7, 30 * DAY)
    issued: list[str] = []
    logged_out: list[int] = []

    async def use() -> None:
        with contextlib.suppress(InvalidRefreshTokenError):
            issued.append((await refresh.rotate(token, 30 * DAY))[1])

    async def log_out() -> None:
        with contextlib.suppress(InvalidRefreshTokenError):
            logged_out.append(await refresh.revoke(token))

    actors = [log_out, log_out, use, use] if logout_first else [use, use, log_out, log_out]
    async with trio.open_nursery() as nursery:
        for actor in actors:
            nursery.start_soon(actor)
            await trio.sleep(0.001)  # this order, overlapping
    assert logged_out
    assert len(issued) == (0 if logout_first else 1)
    for new in issued:
        with pytest.raises(InvalidRefreshTokenError):
            await refresh.rotate(new, 30 * DAY)


@pytest.mark.parametrize("thief_first", [True, False])
async def test_a_rotation_racing_a_reuse_revocation_does_not_survive_it(
    autojump_clock: trio.testing.MockClock, thief_first: bool
) -> None:
    store = InMemoryRefreshStore(step_latency_s=0.01)
    refresh = RefreshTokens(store, clock=trio.current_time, reuse_grace_s=1)
    spent = await refresh.issue(7, 30 * DAY)
    _, current = await refresh.rotate(spent, 30 * DAY)
    await trio.sleep(2)  # past the grace window
    issued: list[str] = []

    async def thief() -> None:
        with contextlib.suppress(InvalidRefreshTokenError):
            issued.append((await refresh.rotate(current, 30 * DAY))[1])

    async def replay() -> None:
        with pytest.raises(InvalidRefreshTokenError):  # reuse, then a revoked family
            await refresh.rotate(spent, 30 * DAY)

    actors = [thief, replay, thief, replay] if thief_first else [replay, thief, replay, thief]
    async with trio.open_nursery() as nursery:
        for actor in actors:
            nursery.start_soon(actor)
            await trio.sleep(0.001)  # this order, overlapping
    assert len(issued) == (1 if thief_first else 0)
    for new in issued:  # the thief's rotation went first, and died with the family
        with pytest.raises(InvalidRefreshTokenError):
            await refresh.rotate(new, 30 * DAY)


async def test_revoking_a_user_ends_every_log_in_of_theirs_and_no_one_elses() -> None:
    refresh = RefreshTokens(InMemoryRefreshStore(), clock=Clock())
    mine = [await refresh.issue(7, 30 * DAY) for _ in range(2)]
    _, mine[1] = await refresh.rotate(mine[1], 30 * DAY)
    other = await refresh.issue(8, 30 * DAY)
    await refresh.revoke_user(7)
    for token in mine:
        with pytest.raises(InvalidRefreshTokenError):
            await refresh.rotate(token, 30 * DAY)
    assert (await refresh.rotate(other, 30 * DAY))[0] == 8


async def test_a_deleted_users_tokens_and_new_log_ins_are_refused() -> None:
    store = InMemoryRefreshStore()
    refresh = RefreshTokens(store, clock=Clock())
    token = await refresh.issue(7, 30 * DAY)
    await store.delete_user(7)
    with pytest.raises(InvalidRefreshTokenError):
        await refresh.rotate(token, 30 * DAY)
    with pytest.raises(InvalidRefreshTokenError, match="no longer exists"):
        await refresh.issue(7, 30 * DAY)


async def test_a_log_in_checked_against_a_password_changed_since_is_refused() -> None:
    """The log-in checked the old password, the password changed (revoking the user's
    tokens), then the log-in asks for its token: refused; the new password's is issued."""
    store = InMemoryRefreshStore()
    store.password_hashes[7] = "old hash"
    refresh = RefreshTokens(store, clock=Clock())
    before = await refresh.issue(7, 30 * DAY, password_hash="old hash")
    await store.change_password(7, "new hash")
    with pytest.raises(InvalidRefreshTokenError, match="password changed"):
        await refresh.issue(7, 30 * DAY, password_hash="old hash")
    with pytest.raises(InvalidRefreshTokenError):
        await refresh.rotate(before, 30 * DAY)  # revoked by the change
    fresh = await refresh.issue(7, 30 * DAY, password_hash="new hash")
    assert (await refresh.rotate(fresh, 30 * DAY))[0] == 7


async def test_a_record_of_an_earlier_version_without_a_family_still_rotates() -> None:
    store = InMemoryRefreshStore()
    refresh = RefreshTokens(store, clock=Clock())
    token = "3b241101-e2bb-4255-8caf-4136c566a962"
    old = RefreshRecord(hash_refresh_token(token), 7, "old-family", Clock().now + DAY)
    store.records[old.token_hash] = old  # as an earlier version left it: no family row
    user_id, fresh = await refresh.rotate(token, 30 * DAY)
    assert user_id == 7
    assert store.records[hash_refresh_token(fresh)].family_id == "old-family"


async def test_logout_revokes_and_garbage_is_refused() -> None:
    refresh = RefreshTokens(InMemoryRefreshStore(), clock=Clock())
    token = await refresh.issue(7, 30 * DAY)
    assert await refresh.revoke(token) == 7
    with pytest.raises(InvalidRefreshTokenError):
        await refresh.rotate(token, 30 * DAY)
    for garbage in ("", "nope", "00000000-0000-0000-0000-000000000000"):
        with pytest.raises(InvalidRefreshTokenError):
            await refresh.rotate(garbage, 30 * DAY)
