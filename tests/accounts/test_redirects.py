"""Only a local path is ever followed after logging in."""

from __future__ import annotations

import pytest

from service.accounts.redirects import safe_next


@pytest.mark.parametrize(
    "target", ["/users", "/users/3/edit", "/users?page=2", "/reports/users#top"]
)
def test_a_local_path_is_followed(target: str) -> None:
    assert safe_next(target) == target


@pytest.mark.parametrize(
    "target",
    [
        None,
        "",
        "users",
        "//evil.example/x",
        "/\\evil.example",
        "/\\/evil.example",
        "https://evil.example/",
        "https:evil.example",
        "javascript:alert(1)",
        "/ok\\..\\evil",
        "/users\r\nSet-Cookie: x=1",
        "/users\x00",
    ],
)
def test_anything_else_falls_back_to_the_default(target: str | None) -> None:
    assert safe_next(target) == "/users"
    assert safe_next(target, default="/") == "/"
