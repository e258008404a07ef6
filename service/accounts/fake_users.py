"""Fake users for the demo and the tests, reproducible from a seed. No I/O."""

from __future__ import annotations

from faker import Faker

from .emails import email_key
from .users_file import NewUser

__all__ = ["fake_users"]


def fake_users(count: int, *, seed: int = 0) -> list[NewUser]:
    """``count`` users with distinct emails (case-insensitively), plausible usernames and
    random 16-character passwords; the same ``seed`` gives the same users."""
    if count < 0:
        raise ValueError("count must be >= 0")
    faker = Faker()
    faker.seed_instance(seed)
    users: list[NewUser] = []
    seen: set[str] = set()
    while len(users) < count:
        email = faker.unique.email()
        if email_key(email) in seen:
            continue
        seen.add(email_key(email))
        users.append(NewUser(email, faker.user_name(), faker.password(length=16)))
    return users
