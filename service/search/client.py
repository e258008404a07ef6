"""The Stack Exchange API's /search, with httpx: gzip, paging, quota, backoff, error bodies,
throttling and timeouts, each failure a typed error with a message a page can show."""

from __future__ import annotations

import gzip
import logging
import math
from collections.abc import Callable
from typing import Any, Protocol

import httpx
import orjson
import trio

from .backoff import Backoffs, LocalBackoffs
from .models import ApiPage, Question

__all__ = [
    "ApiBackoffError",
    "ApiErrorResponse",
    "ApiThrottledError",
    "ApiTimeoutError",
    "ApiUnavailableError",
    "SearchApiError",
    "SearchSource",
    "StackExchangeClient",
]

logger = logging.getLogger("service.search.client")

#: The API's error_id for "too many requests" (HTTP 502 with this body).
THROTTLE_VIOLATION = 502
#: How long throttling holds back the method when the answer says no Retry-After.
THROTTLE_BACKOFF_S = 30.0


class SearchApiError(Exception):
    """The API could not answer; ``str()`` is a message for the page."""


class ApiErrorResponse(SearchApiError):
    """An error body: ``error_id``, ``error_name``, ``error_message`` (HTTP 400-502)."""

    def __init__(self, status: int, error_id: int, error_name: str, error_message: str) -> None:
        super().__init__(
            f"The Stack Exchange API refused the search: {error_name} ({error_id}): {error_message}"
        )
        self.status = status
        self.error_id = error_id
        self.error_name = error_name
        self.error_message = error_message


class ApiThrottledError(SearchApiError):
    """Throttled (HTTP 429, or ``throttle_violation``): too many requests; try later."""

    def __init__(self, detail: str, retry_after_s: float | None = None) -> None:
        wait = f" Try again in {math.ceil(retry_after_s)} s." if retry_after_s else ""
        super().__init__(f"The Stack Exchange API is throttling our requests: {detail}.{wait}")
        self.retry_after_s = retry_after_s


class ApiBackoffError(SearchApiError):
    """The API asked for no call of this method for a while, longer than we may wait."""

    def __init__(self, method: str, wait_s: float) -> None:
        super().__init__(
            f"The Stack Exchange API asked us not to call {method} for {math.ceil(wait_s)} s"
            " more (backoff); try again then."
        )
        self.method = method
        self.wait_s = wait_s


class ApiTimeoutError(SearchApiError):
    """No answer within the request timeout."""


class ApiUnavailableError(SearchApiError):
    """No usable answer: the connection failed, or the body is not the API's JSON."""


class SearchSource(Protocol):
    """Where search results come from: the API, or an in-memory fake in tests."""

    async def search(self, text: str, site: str, page: int, page_size: int) -> ApiPage:
        """One page (from 1) of the questions whose title holds ``text`` on ``site``."""
        ...


class StackExchangeClient:
    """``GET {api_url}/2.3/search`` on a shared ``httpx.AsyncClient``.

    A ``backoff`` in an answer, and throttling (HTTP 429 or ``throttle_violation``, for its
    Retry-After or :data:`THROTTLE_BACKOFF_S`), holds back the next call of the same method
    until it has passed: a call within ``max_backoff_wait_s`` of its end waits, a later one
    fails at once with :class:`ApiBackoffError` (a page should not hang). The holds are
    kept in ``backoffs``, shared by every client that is given the same (in Redis: every
    process); by default this client's own.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_url: str,
        *,
        timeout_s: float,
        sort: str = "activity",
        order: str = "desc",
        key: str | None = None,
        max_backoff_wait_s: float = 5.0,
        backoffs: Backoffs | None = None,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self._http = http
        self._url = api_url.rstrip("/") + "/2.3"
        self._timeout_s = timeout_s
        self._sort = sort
        self._order = order
        self._key = key
        self._max_wait_s = max_backoff_wait_s
        self._backoffs = backoffs if backoffs is not None else LocalBackoffs(clock)
        self.quota_remaining: int | None = None

    async def search(self, text: str, site: str, page: int, page_size: int) -> ApiPage:
        params: dict[str, str | int] = {
            "intitle": text,
            "site": site,
            "page": page,
            "pagesize": page_size,
            "sort": self._sort,
            "order": self._order,
        }
        if self._key:
            params["key"] = self._key
        body = await self._get("search", params)
        try:
            questions = tuple(Question.from_api(site, item) for item in body.get("items", ()))
        except (KeyError, TypeError, ValueError) as exc:
            raise ApiUnavailableError(
                f"The Stack Exchange API sent a question without its fields ({exc!r})."
            ) from exc
        return ApiPage(
            questions=questions,
            has_more=bool(body.get("has_more", False)),
            quota_remaining=self.quota_remaining,
            backoff_s=_int_or_none(body.get("backoff")),
        )

    async def _get(self, method: str, params: dict[str, str | int]) -> dict[str, Any]:
        await self._wait_for_backoff(method)
        try:
            with trio.fail_after(self._timeout_s):
                response = await self._http.get(
                    f"{self._url}/{method}", params=params, timeout=self._timeout_s
                )
        except (trio.TooSlowError, httpx.TimeoutException):
            raise ApiTimeoutError(
                f"The Stack Exchange API did not answer within {self._timeout_s:g} s."
            ) from None
        except httpx.HTTPError as exc:
            raise ApiUnavailableError(
                f"The Stack Exchange API could not be reached ({type(exc).__name__})."
            ) from exc
        body = _json_body(response)
        await self._note_backoff(method, body)
        if "quota_remaining" in body:
            self.quota_remaining = _int_or_none(body["quota_remaining"])
        if response.status_code == 429:
            await self._throttled(method, response)
            raise ApiThrottledError("too many requests (HTTP 429)", _retry_after(response))
        if "error_id" in body or response.status_code >= 400:
            error_id = _int_or_none(body.get("error_id")) or response.status_code
            name = str(body.get("error_name") or "error")
            message = str(body.get("error_message") or f"HTTP {response.status_code}")
            if name == "throttle_violation" or error_id == THROTTLE_VIOLATION:
                await self._throttled(method, response)
                raise ApiThrottledError(message, _retry_after(response))
            raise ApiErrorResponse(response.status_code, error_id, name, message)
        return body

    async def _throttled(self, method: str, response: httpx.Response) -> None:
        retry_after = _retry_after(response)
        await self._backoffs.hold(method, retry_after or THROTTLE_BACKOFF_S)

    async def _wait_for_backoff(self, method: str) -> None:
        wait_s = await self._backoffs.remaining_s(method)
        if wait_s <= 0:
            return
        if wait_s > self._max_wait_s:
            raise ApiBackoffError(method, wait_s)
        logger.info("waiting %.1f s: the API asked for a backoff on %s", wait_s, method)
        await trio.sleep(wait_s)

    async def _note_backoff(self, method: str, body: dict[str, Any]) -> None:
        backoff = _int_or_none(body.get("backoff"))
        if backoff is not None and backoff > 0:
            await self._backoffs.hold(method, backoff)


def _json_body(response: httpx.Response) -> dict[str, Any]:
    raw = response.content
    # httpx undoes Content-Encoding: gzip; a gzipped body without that header is undone here.
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ApiUnavailableError("The Stack Exchange API sent a broken gzip body.") from exc
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        if response.status_code == 429:
            return {}
        raise ApiUnavailableError(
            f"The Stack Exchange API answered HTTP {response.status_code} without JSON."
        ) from None
    if not isinstance(body, dict):
        raise ApiUnavailableError(
            "The Stack Exchange API answered with JSON that is not an object."
        )
    return body


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After", "")
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return int(value)
    except ValueError:
        return None
