"""api/coalesce.py: concurrent requests' items reach the handler in batches, each caller gets
its own item's result (or the batch's failure), and a caller that goes away leaves its item
in the batch. The handler runs in a real worker thread, as in the app."""

from __future__ import annotations

import asyncio
import threading

import pytest

from amphi.coalesce import Coalescer


class Recorder:
    """A handler that records its batches and can be held until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, batch: list[int]) -> list[int | Exception]:
        self.gate.wait(5)
        self.batches.append(batch)
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in batch]


async def test_alone_at_once_then_what_arrived_meanwhile_in_one_batch() -> None:
    handler = Recorder()
    coalescer = Coalescer(handler)
    handler.gate.clear()  # the first batch is being handled...
    first = asyncio.create_task(coalescer.submit(0))
    await asyncio.sleep(0.05)
    rest = [asyncio.create_task(coalescer.submit(i)) for i in (2, 4, 6)]  # ...they wait
    await asyncio.sleep(0.05)
    handler.gate.set()
    assert await first == 0
    assert await asyncio.gather(*rest) == [20, 40, 60]
    assert handler.batches == [[0], [2, 4, 6]]


async def test_each_caller_gets_its_own_exception() -> None:
    coalescer = Coalescer(Recorder())
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(4)),
                                   return_exceptions=True)
    assert results[0] == 0 and results[2] == 20
    assert [str(r) for r in results[1::2]] == ["odd 1", "odd 3"]


async def test_a_failed_batch_fails_every_caller_in_it() -> None:
    def broken(batch: list[int]) -> list[int]:
        raise ConnectionError("queue down")

    coalescer = Coalescer(broken)
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(3)),
                                   return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError] * 3


async def test_linger_gathers_a_batch_and_max_batch_splits_it() -> None:
    handler = Recorder()
    coalescer = Coalescer(handler, linger=0.05, max_batch=4)
    assert await asyncio.gather(*(coalescer.submit(i * 2) for i in range(6))) == \
        [0, 20, 40, 60, 80, 100]
    assert handler.batches == [[0, 2, 4, 6], [8, 10]]


async def test_a_caller_that_goes_away_leaves_its_item_in_the_batch() -> None:
    handler = Recorder()
    coalescer = Coalescer(handler, linger=0.05)
    gone = asyncio.create_task(coalescer.submit(8))
    await asyncio.sleep(0.01)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert await coalescer.submit(4) == 40
    await coalescer.aclose()
    assert handler.batches == [[8, 4]]
