"""The run's slots: never more than ``count`` held, handed out in line order."""

from __future__ import annotations

import asyncio

from parallelcc_sdk.slots import Slots


async def test_slots_go_in_line_order_and_a_task_that_leaves_frees_its_place() -> None:
    slots = Slots(1)
    places = [slots.take_place() for _ in range(4)]
    got: list[int] = []

    async def take(place: int) -> None:
        await slots.acquire(place)
        got.append(place)

    # Places 3 and 2 ask first, 0 never asks (its preparation failed), then 1 asks.
    later = [asyncio.create_task(take(p)) for p in (places[3], places[2])]
    await asyncio.sleep(0)
    assert got == []
    slots.leave_line(places[0])
    slots.leave_line(places[0])  # twice is harmless
    first = asyncio.create_task(take(places[1]))
    await first
    assert got == [1]
    slots.release()
    await asyncio.sleep(0)
    assert got == [1, 2]
    slots.release()
    await asyncio.wait_for(asyncio.gather(*later), 5)
    assert got == [1, 2, 3]


async def test_a_retry_waits_for_a_free_slot_not_for_its_turn() -> None:
    slots = Slots(1)
    slots.take_place()  # a task in line that is still preparing
    await asyncio.wait_for(slots.acquire(None), 5)
    retry = asyncio.create_task(slots.acquire(None))
    await asyncio.sleep(0)
    assert not retry.done()
    slots.release()
    await asyncio.wait_for(retry, 5)


async def test_a_cancelled_waiter_takes_nothing() -> None:
    slots = Slots(1)
    await slots.acquire(None)
    waiter = asyncio.create_task(slots.acquire(None))
    await asyncio.sleep(0)
    waiter.cancel()
    slots.release()
    await asyncio.gather(waiter, return_exceptions=True)
    await asyncio.wait_for(slots.acquire(None), 1)
