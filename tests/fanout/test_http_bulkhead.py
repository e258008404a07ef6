"""An HTTP source's cap on reads in flight (its client's pool size), on MockTransport."""

from __future__ import annotations

import httpx
import pytest
import trio
import trio.testing

from service.fanout.http_source import HttpJsonSource
from service.fanout.source import SourceBusyError
from service.platform.bulkhead import Bulkhead
from tests.support.http_answers import BODY, ROWS, URL, Chunks


def slow_source(bulkhead: Bulkhead, in_transport: list[int]) -> HttpJsonSource:
    async def handler(_request: httpx.Request) -> httpx.Response:
        in_transport.append(1)
        await trio.sleep(1.0)
        return httpx.Response(200, stream=Chunks([BODY]))

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return HttpJsonSource("s", URL, client, max_body_bytes=1 << 20, bulkhead=bulkhead)


async def test_reads_past_the_cap_wait_for_a_slot_before_reaching_the_client(
    autojump_clock: trio.testing.MockClock,
) -> None:
    in_transport: list[int] = []
    bulkhead = Bulkhead(2)
    source = slow_source(bulkhead, in_transport)
    results: list[object] = []

    async def read() -> None:
        results.append(await source.fetch())

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(read)
        await trio.sleep(0.5)
        assert (len(in_transport), bulkhead.in_use, bulkhead.waiting) == (2, 2, 3)
    assert results == [ROWS] * 5
    assert trio.current_time() == pytest.approx(3.0)  # three rounds of two
    assert bulkhead.in_use == 0


async def test_a_read_fails_as_busy_when_the_cap_and_its_queue_are_full(
    autojump_clock: trio.testing.MockClock,
) -> None:
    in_transport: list[int] = []
    source = slow_source(Bulkhead(1, max_waiting=0), in_transport)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(source.fetch)
        await trio.sleep(0.1)
        with pytest.raises(SourceBusyError):
            await source.check()
    assert len(in_transport) == 1
