"""Step 2: the remote service, called with each processed image. One ``httpx.AsyncClient``
for the whole run; every call has a deadline; 5xx and 429 answers, timeouts and connection
errors are retried with capped exponential backoff (a 429's ``Retry-After`` honoured); what
still fails is the image's failure, never the run's.

A circuit breaker shared by all the calls tells an outage from a bad image: after
``threshold`` failed attempts in a row it opens, and the remote stage pauses: one call at
a time probes the service (at growing intervals up to a cap) while the others wait, and no
attempt made while it is open counts against an image. The first answer closes it. So a
remote that is down for minutes (or hours) holds the run up instead of failing every image
at walk speed; the bounded channels stop the CPU stage and the walk meanwhile."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

import httpx
import trio

__all__ = [
    "CircuitBreaker",
    "FakeRemote",
    "HttpRemote",
    "Remote",
    "RemoteFailedError",
    "RetryPolicy",
    "RetryableError",
    "call_with_retries",
    "parse_retry_after",
]

logger = logging.getLogger("service.images.remote")

#: The longest answer kept in the journal.
MAX_ANSWER_BYTES = 64 * 1024


class RemoteFailedError(Exception):
    """The remote service gave no usable answer for this image (after the retries)."""


class RetryableError(Exception):
    """One attempt failed in a way worth retrying (a 5xx, a 429, a timeout, a broken
    connection); ``retry_after_s`` is the wait the server asked for (``Retry-After``)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds (an HTTP date is ignored)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if 0 <= seconds < float("inf") else None


class Remote(Protocol):
    """The remote service's seam: one attempt for one image, the answer as text. Raises
    ``RetryableError`` for a failure worth retrying, ``RemoteFailedError`` for one that is
    not (a 4xx)."""

    async def call_once(self, name: str, payload: bytes, content_type: str) -> str: ...


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries of ``deadline_s`` each, ``backoff_s`` doubling between them (with
    jitter, capped at ``max_backoff_s``)."""

    attempts: int = 6
    deadline_s: float = 10.0
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0

    def delay_s(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """Wait before retry number ``retry`` (1-based): full jitter over the doubled base."""
        return min(self.max_backoff_s, self.backoff_s * 2.0 ** (retry - 1)) * (0.5 + rand() / 2)


class CircuitBreaker:
    """Shared by all the calls of a run: opens after ``threshold`` failed attempts in a row;
    while open, calls go one at a time (probes), ``probe_interval_s`` apart at first, then
    twice as far each time up to ``max_probe_interval_s``; an answer closes it."""

    def __init__(
        self,
        threshold: int = 10,
        probe_interval_s: float = 1.0,
        max_probe_interval_s: float = 60.0,
    ) -> None:
        self.threshold = threshold
        self.probe_interval_s = probe_interval_s
        self.max_probe_interval_s = max_probe_interval_s
        self.is_open = False
        self.openings = 0
        self._failures_in_a_row = 0
        self._interval_s = probe_interval_s
        self._probe = trio.Lock()

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[bool]:
        """Around one attempt: at once while closed (yields False); while open, waits its
        turn and the probe interval, and yields True (the attempt is a probe)."""
        if not self.is_open:
            yield False
            return
        await self._probe.acquire()
        try:
            if not self.is_open:  # closed while this call queued
                self._probe.release()
                probing = False
            else:
                probing = True
                await trio.sleep(self._interval_s)
                self._interval_s = min(2 * self._interval_s, self.max_probe_interval_s)
            yield probing
        finally:
            if probing:
                self._probe.release()

    def succeeded(self) -> None:
        self._failures_in_a_row = 0
        if self.is_open:
            self.is_open = False
            logger.warning("the remote service answers again: resuming")

    def failed(self) -> None:
        self._failures_in_a_row += 1
        if not self.is_open and self._failures_in_a_row >= self.threshold:
            self.is_open = True
            self.openings += 1
            self._interval_s = self.probe_interval_s
            logger.warning(
                "the remote service failed %d times in a row: pausing, probing it until it answers",
                self._failures_in_a_row,
            )


async def call_with_retries(
    remote: Remote,
    name: str,
    payload: bytes,
    content_type: str,
    policy: RetryPolicy,
    on_retry: Callable[[], None] = lambda: None,
    breaker: CircuitBreaker | None = None,
) -> str:
    """The remote's answer for one image, or ``RemoteFailedError`` after the last attempt
    (attempts made while ``breaker`` is open do not count)."""
    breaker = breaker or CircuitBreaker(threshold=1 << 62)  # a breaker that never opens
    last = "no attempt"
    asked_s: float | None = None
    attempt = 0
    while attempt < policy.attempts:
        if attempt > 0:
            on_retry()
            delay = policy.delay_s(attempt)
            if asked_s is not None:  # the server's Retry-After, within the backoff's cap
                delay = max(delay, min(asked_s, policy.max_backoff_s))
            await trio.sleep(delay)
        asked_s, answer = None, None
        async with breaker.admit() as probing:
            with trio.move_on_after(policy.deadline_s) as scope:
                try:
                    answer = await remote.call_once(name, payload, content_type)
                except RetryableError as exc:
                    last = str(exc)
                    asked_s = exc.retry_after_s
                except RemoteFailedError:
                    breaker.succeeded()  # it answered: the service is up, the image is bad
                    raise
            if scope.cancelled_caught:
                last = f"no answer within {policy.deadline_s:g} s"
            if answer is not None:
                breaker.succeeded()
                return answer
            breaker.failed()
        if not probing:
            attempt += 1
    raise RemoteFailedError(f"{last} (after {policy.attempts} attempts)")


class HttpRemote:
    """POSTs the image's bytes to ``url`` (header ``X-Image-Name``: its path relative to SRC)
    and keeps the body of a 2xx answer. The client has no timeouts of its own: the caller's
    trio deadline is the one timeout."""

    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self._client = client
        self._url = url

    async def call_once(self, name: str, payload: bytes, content_type: str) -> str:
        headers = {"content-type": content_type, "x-image-name": quote(name)}
        try:
            async with self._client.stream(
                "POST", self._url, content=payload, headers=headers
            ) as response:
                status = response.status_code
                if status >= 500 or status == 429:
                    raise RetryableError(
                        f"HTTP {status}", parse_retry_after(response.headers.get("retry-after"))
                    )
                if not 200 <= status < 300:  # 4xx, and 3xx: a redirect is not an answer
                    raise RemoteFailedError(f"HTTP {status}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) >= MAX_ANSWER_BYTES:
                        break  # keep the start of an oversized answer, read no more
        except httpx.TransportError as exc:  # refused, reset, timeouts, protocol errors
            raise RetryableError(f"{type(exc).__name__}: {exc}") from exc
        except httpx.HTTPError as exc:  # e.g. a 2xx body that cannot be decoded: not retried
            raise RemoteFailedError(f"{type(exc).__name__}: {exc}") from exc
        return bytes(body[:MAX_ANSWER_BYTES]).decode("utf-8", "replace")


@dataclass
class FakeRemote:
    """In memory: answers ``answer`` after ``delay_s``, failing the first ``failures`` calls
    (retryably) or hanging them when ``hang``; counts calls per name."""

    answer: str = '{"ok": true}'
    delay_s: float = 0.0
    failures: int = 0
    hang: bool = False

    def __post_init__(self) -> None:
        self.calls: dict[str, int] = {}

    async def call_once(self, name: str, payload: bytes, content_type: str) -> str:
        self.calls[name] = self.calls.get(name, 0) + 1
        if self.failures > 0:
            self.failures -= 1
            if self.hang:
                await trio.sleep_forever()
            raise RetryableError("HTTP 503")
        await trio.sleep(self.delay_s)
        return self.answer
